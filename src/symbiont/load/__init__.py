"""Loading revisions, the stable dispatchers, the revision registry and unloading.

Knows nothing of LLMs.
"""

from symbiont.load._boundary import Cell
from symbiont.load._library import Library, loaded_count, reap
from symbiont.load._revisions import (
    Functions,
    Revision,
    RevisionHandle,
    RevisionTable,
    timeout_ns,
)
from symbiont.load._trampoline import trampoline
from symbiont.load._vectorised import Maps, Vectorised

__all__ = [
    "Cell",
    "Functions",
    "Library",
    "Maps",
    "Revision",
    "RevisionHandle",
    "RevisionTable",
    "Vectorised",
    "loaded_count",
    "reap",
    "timeout_ns",
    "trampoline",
]
