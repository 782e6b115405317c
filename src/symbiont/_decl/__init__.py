"""Rust declarations: parsing, boundary types, signature normalisation, and source positions
(the map between the code the LLM wrote and the copy that is compiled).

Knows nothing of compilers, loading or LLMs.
"""

from symbiont._decl._declarations import (
    Declarations,
    FunctionDecl,
    Param,
    evolvable,
    function_parts,
    item_name,
    param_name,
)
from symbiont._decl._sourcemap import SourceMap, SourceText, Unit, char_width, display_width
from symbiont._decl._types import (
    ELEMENT_SIZE,
    INTEGERS,
    NUMERIC,
    NUMPY_DTYPE,
    SCALARS,
    RustType,
)

__all__ = [
    "ELEMENT_SIZE",
    "INTEGERS",
    "NUMERIC",
    "NUMPY_DTYPE",
    "SCALARS",
    "Declarations",
    "FunctionDecl",
    "Param",
    "RustType",
    "SourceMap",
    "SourceText",
    "Unit",
    "char_width",
    "display_width",
    "evolvable",
    "function_parts",
    "item_name",
    "param_name",
]
