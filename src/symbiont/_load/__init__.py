"""Loading revisions, the stable dispatchers, the revision registry and unloading.

Knows nothing of LLMs.
"""

from symbiont._load._boundary import Cell
from symbiont._load._library import Library, loaded_count, reap, reap_after_collection
from symbiont._load._records import Record, Types
from symbiont._load._revisions import (
    Functions,
    Revision,
    RevisionHandle,
    RevisionTable,
    code_of,
    timeout_ns,
)
from symbiont._load._trampoline import trampoline, trampoline_from, trampoline_path
from symbiont._load._vectorised import Maps, Vectorised

__all__ = [
    "Cell",
    "Functions",
    "Library",
    "Maps",
    "Record",
    "Revision",
    "RevisionHandle",
    "RevisionTable",
    "Types",
    "Vectorised",
    "code_of",
    "loaded_count",
    "reap",
    "reap_after_collection",
    "timeout_ns",
    "trampoline",
    "trampoline_from",
    "trampoline_path",
]
