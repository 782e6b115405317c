"""Validation of LLM replies before compiling.

Owns: reply -> code extraction, edit replies (SEARCH/REPLACE against the current code),
tree-sitter parse, signature check, policy scan.

Layer rule (docs/architecture.md, section 1): imports point down. This package uses
``symbiont._decl`` and the failure record only, and never imports ``symbiont._agents``: it sees
replies as plain text.
"""

from symbiont._validate._edits import code_from_edits
from symbiont._validate._extract import extract_code
from symbiont._validate._merge import complete_from_parent, subset
from symbiont._validate._types import (
    DEFAULT_DENIED_MACROS,
    DEFAULT_DENIED_PATHS,
    Candidate,
    Policy,
    Rejection,
    RejectionKind,
)
from symbiont._validate._validate import validate, validate_code

__all__ = [
    "DEFAULT_DENIED_MACROS",
    "DEFAULT_DENIED_PATHS",
    "Candidate",
    "Policy",
    "Rejection",
    "RejectionKind",
    "code_from_edits",
    "complete_from_parent",
    "extract_code",
    "subset",
    "validate",
    "validate_code",
]
