"""`python -m symbiont.cli` runs the command-line tool."""

import sys

from symbiont.cli import main

sys.exit(main())
