"""Generated crate source: prelude + candidate + CPython glue + panic capture.

Knows nothing of compilers, loading or LLMs.
"""

from symbiont.codegen._crate import (
    ENTRY_PREFIX,
    GLUE_ABI,
    INIT_SYMBOL,
    CrateSource,
    generate,
    public_prelude,
)

__all__ = ["ENTRY_PREFIX", "GLUE_ABI", "INIT_SYMBOL", "CrateSource", "generate", "public_prelude"]
