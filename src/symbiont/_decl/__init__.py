"""Rust declarations: parsing, boundary types and signature normalisation.

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
from symbiont._decl._records import DataEnumDecl, EnumDecl, Field, StructDecl, Variant
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
    "DataEnumDecl",
    "Declarations",
    "EnumDecl",
    "Field",
    "FunctionDecl",
    "Param",
    "RustType",
    "StructDecl",
    "Variant",
    "evolvable",
    "function_parts",
    "item_name",
    "param_name",
]
