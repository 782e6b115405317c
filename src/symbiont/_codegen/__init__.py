"""Generated crate source: prelude + candidate + CPython glue + panic capture.

Knows nothing of compilers, loading or LLMs.
"""

from symbiont._codegen._crate import (
    ENTRY_PREFIX,
    GLUE_ABI,
    INIT_SYMBOL,
    MAP_INPUT,
    MAP_PREFIX,
    RUNTIME_CRATE,
    CrateSource,
    abi_source,
    generate,
    public_prelude,
    runtime_source,
    vectorisable,
)
from symbiont._codegen._guards import ENTER, TICK, Instrumented, instrument

__all__ = [
    "ENTER",
    "ENTRY_PREFIX",
    "GLUE_ABI",
    "INIT_SYMBOL",
    "MAP_INPUT",
    "MAP_PREFIX",
    "RUNTIME_CRATE",
    "TICK",
    "CrateSource",
    "Instrumented",
    "abi_source",
    "generate",
    "instrument",
    "public_prelude",
    "runtime_source",
    "vectorisable",
]
