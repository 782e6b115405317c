"""`python -m symbiont._cli` runs the command-line tool."""

import sys

from symbiont._cli import main

sys.exit(main())
