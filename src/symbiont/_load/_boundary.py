"""The Python side of the boundary: `Cell`, and the messages for every rejected argument.

The generated glue converts arguments in Rust on the fast path; whenever that fails it calls
back here, where the declaration is known, to normalise the object (numpy scalars, objects with
``__index__``) or to raise a TypeError/OverflowError/ValueError that names the parameter, the
expected Rust type and what was given.
"""

from __future__ import annotations

import math
import operator
import sys
from typing import Any, NoReturn

from symbiont._decl import (
    ELEMENT_SIZE,
    INTEGERS,
    NUMERIC,
    NUMPY_DTYPE,
    SCALARS,
    FunctionDecl,
    RustType,
)


class Cell:
    """A mutable scalar for ``&mut T`` parameters; the callee's write lands in ``value``.

    ``rust_type`` (e.g. ``"usize"``) pins the type: passing the cell for a parameter of another
    type is an error. Without it the value is range-checked against the parameter's type.
    """

    __slots__ = ("rust_type", "value")

    def __init__(self, value: Any = 0, rust_type: str | None = None) -> None:
        if rust_type is not None and rust_type not in SCALARS:
            raise ValueError(f"Cell type must be one of {', '.join(SCALARS)}, got {rust_type!r}")
        self.value = value
        self.rust_type = rust_type

    def __repr__(self) -> str:
        if self.rust_type is None:
            return f"Cell({self.value!r})"
        return f"Cell({self.value!r}, {self.rust_type!r})"


def describe(obj: Any) -> str:
    """What was given, for error messages: type, and the value when it is short."""
    t = type(obj)
    name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    dtype = getattr(obj, "dtype", None)
    shape = getattr(obj, "shape", None)
    if dtype is not None and getattr(dtype, "names", None):
        kind = f"a structured dtype ({', '.join(dtype.names)})"
        return f"{name} of {kind} and shape {tuple(shape)}" if shape else f"{name} of {kind}"
    if dtype is not None and shape:
        return f"{name} of dtype {dtype} and shape {tuple(shape)}"
    r = repr(obj)
    return f"{name} {r}" if len(r) <= 40 else name


_FORMAT_KIND = {**dict.fromkeys("bhilqn", "signed"), **dict.fromkeys("BHILQN", "unsigned")}


def _format_matches(fmt: str, itemsize: int, elem: str) -> bool:
    code = fmt.lstrip("@=<")
    if len(code) != 1:
        return False
    if itemsize != ELEMENT_SIZE[elem]:
        return False
    if elem in ("f32",):
        return code == "f"
    if elem == "f64":
        return code == "d"
    if elem == "bool":
        return code == "?"
    return _FORMAT_KIND.get(code) == ("unsigned" if elem.startswith("u") else "signed")


class ArgumentChecker:
    """Normalises or rejects the arguments of one declared function."""

    def __init__(self, decl: FunctionDecl) -> None:
        self.decl = decl

    def where(self, pi: int) -> str:
        p = self.decl.params[pi]
        return f"{self.decl.name}() argument {pi + 1} '{p.name}'"

    def arity(self, nargs: int) -> NoReturn:
        n = len(self.decl.params)
        plural = "" if n == 1 else "s"
        raise TypeError(
            f"{self.decl.name}() takes {n} argument{plural} ({self.decl.signature}), got {nargs}"
        )

    def coerce(self, pi: int, obj: Any, retry: bool) -> Any:
        return self.coerce_as(self.where(pi), self.decl.params[pi].type, obj, retry)

    def coerce_as(self, where: str, t: RustType, obj: Any, retry: bool) -> Any:
        """``obj`` normalised for type ``t`` (``retry``), or the error saying why it is not one."""
        if t.kind == "scalar":
            value = self.scalar(where, t.name, obj)
            if retry:
                return value
        elif t.kind == "str":
            if isinstance(obj, str):
                raise ValueError(f"{where} expects &str: this str cannot be encoded as UTF-8 "
                                 "(it holds a lone surrogate)")  # fmt: skip
            raise TypeError(f"{where} expects &str (a str), got {describe(obj)}")
        elif t.kind == "slice":
            assert t.elem is not None
            self.buffer_problem(where, t, obj)
        elif t.kind == "mut_ref":
            assert t.elem is not None
            if isinstance(obj, Cell):
                self.scalar(f"{where} (the Cell's value)", t.elem.name, obj.value)
            else:
                self.buffer_problem(where, t, obj)
        raise TypeError(f"{where} expects {t.rust}, got {describe(obj)}")

    def scalar(self, where: str, name: str, obj: Any) -> Any:
        return check_scalar(where, name, obj)

    def buffer_problem(self, where: str, t: RustType, obj: Any) -> None:
        """Raises the reason ``obj`` cannot be passed as the slice/&mut type ``t``."""
        assert t.elem is not None
        if t.elem.kind == "array":
            rows_problem(where, t, obj)
            return
        elem = t.elem.name
        writable = t.kind == "mut_ref" or t.mutable
        if elem not in NUMPY_DTYPE:
            raise TypeError(f"{where} expects {t.rust}: a symbiont.Cell(value, {elem!r}), "
                            f"got {describe(obj)}")  # fmt: skip
        dtype = NUMPY_DTYPE[elem]
        if t.kind == "mut_ref":
            want = (f"{t.rust}: a symbiont.Cell(value, {elem!r}) or a writable 1-element "
                    f"buffer of {dtype}")  # fmt: skip
        else:
            kind = "writable " if writable else ""
            want = (f"{t.rust}: a C-contiguous {kind}buffer of {dtype} (numpy array, "
                    "array.array, bytes/bytearray, memoryview)")  # fmt: skip
        try:
            view = memoryview(obj)
        except TypeError:
            raise TypeError(f"{where} expects {want}, got {describe(obj)}") from None
        with view:
            if not view.c_contiguous:
                raise ValueError(f"{where} expects {want}, got a non-contiguous buffer "
                                 f"({describe(obj)}): pass a contiguous copy")  # fmt: skip
            if not _format_matches(view.format, view.itemsize, elem):
                raise TypeError(f"{where} expects {want}, got {describe(obj)} (buffer format "
                                f"{view.format!r}, itemsize {view.itemsize})")  # fmt: skip
            if writable and view.readonly:
                raise TypeError(f"{where} expects {want}, got a read-only {describe(obj)}")
            if elem == "bool" and any(b > 1 for b in view.cast("B")):
                raise ValueError(f"{where} expects {want}, got a buffer holding a byte other "
                                 "than 0 or 1, which is not a valid bool")  # fmt: skip
            if t.kind == "mut_ref" and view.nbytes != view.itemsize:
                raise ValueError(
                    f"{where} expects {want}, got a buffer of "
                    f"{view.nbytes // view.itemsize} elements"
                )
            address = _address(view)
            if address is not None and address % view.itemsize:
                raise ValueError(f"{where} expects {want}, got a misaligned buffer: "
                                 "pass an aligned copy")  # fmt: skip

    def cell_get(self, pi: int, obj: Any) -> Any:
        t = self.decl.params[pi].type
        where = self.where(pi)
        assert t.elem is not None
        if not isinstance(obj, Cell):
            self.buffer_problem(where, t, obj)
            raise TypeError(f"{where} expects {t.rust}, got {describe(obj)}")
        if obj.rust_type is not None and obj.rust_type != t.elem.name:
            raise TypeError(f"{where} expects {t.rust}, got a Cell of {obj.rust_type}: "
                            f"use Cell(value, {t.elem.name!r})")  # fmt: skip
        return self.scalar(f"{where} (the Cell's value)", t.elem.name, obj.value)

    def alias(self, pi: int, pj: int) -> NoReturn:
        a, b = self.decl.params[pi], self.decl.params[pj]
        raise ValueError(
            f"{self.decl.name}() arguments '{a.name}' and '{b.name}' share memory and one of "
            "them is a mutable reference, which Rust forbids: pass separate buffers (or a copy)"
        )


def rows_problem(where: str, t: RustType, obj: Any) -> None:
    """Raises the reason ``obj`` cannot be passed as rows ``&[[T; N]]`` (``t``)."""
    import numpy as np

    assert t.elem is not None and t.elem.elem is not None
    dtype, n = np.dtype(NUMPY_DTYPE[t.elem.elem.name]), t.elem.length
    kind = "writable " if t.mutable else ""
    want = f"{t.rust}: a C-contiguous {kind}array of {dtype} with shape (n, {n})"
    try:
        arr = np.asarray(memoryview(obj))
    except (TypeError, ValueError):
        raise TypeError(f"{where} expects {want}, got {describe(obj)}") from None
    if arr.ndim != 2 or arr.shape[1] != n:
        raise ValueError(f"{where} expects {want}, got {describe(obj)}")
    if arr.dtype != dtype:
        raise TypeError(f"{where} expects {want}, got {describe(obj)}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{where} expects {want}, got a non-contiguous {describe(obj)}: "
                         "pass np.ascontiguousarray(...)")  # fmt: skip
    if t.mutable and not arr.flags.writeable:
        raise TypeError(f"{where} expects {want}, got a read-only {describe(obj)}")
    if arr.ctypes.data % dtype.itemsize:
        raise ValueError(f"{where} expects {want}, got a misaligned array: pass a copy")
    if dtype == np.bool_ and (arr.view(np.uint8) > 1).any():
        raise ValueError(f"{where} expects {want}, got an array holding a byte other than 0 "
                         "or 1, which is not a valid bool")  # fmt: skip


_PY_SCALAR = {"f32": "float", "f64": "float", "bool": "bool", "char": "str of length 1"}


def python_type(t: RustType, *, returned: bool = False) -> str:
    """What Python passes for (or gets back from) the Rust type ``t``, for docs and prompts."""
    match t.kind:
        case "scalar":
            return _PY_SCALAR.get(t.name, "int")
        case "str" | "string":
            return "str"
        case "unit":
            return "None"
        case "slice":
            assert t.elem is not None
            if t.elem.kind == "struct":
                kind = f"structured array of rt.types.{t.elem.name}.dtype"
            elif t.elem.kind == "array":
                assert t.elem.elem is not None
                kind = f"array of {NUMPY_DTYPE[t.elem.elem.name]} and shape (n, {t.elem.length})"
            else:
                kind = f"buffer of {NUMPY_DTYPE[t.elem.name]} (numpy array, array.array, ...)"
            return f"C-contiguous {'writable ' if t.mutable else ''}{kind}"
        case "mut_ref":
            assert t.elem is not None
            if t.elem.kind == "struct":
                return f"1-element structured array or record of rt.types.{t.elem.name}"
            if t.elem.name not in NUMPY_DTYPE:
                return f"symbiont.Cell(value, {t.elem.name!r})"
            return f"symbiont.Cell or writable 1-element buffer of {NUMPY_DTYPE[t.elem.name]}"
        case "ref" | "struct":
            name = t.elem.name if t.kind == "ref" and t.elem is not None else t.name
            return f"rt.types.{name} record"
        case "enum":
            return f"rt.types.{t.name} " + ("member" if getattr(t.decl, "repr", "") else "variant")
        case "option":
            assert t.elem is not None
            return f"{python_type(t.elem, returned=returned)} or None"
        case "vec":
            assert t.elem is not None
            if t.elem.kind == "struct":
                return f"structured array of rt.types.{t.elem.name}.dtype"
            if t.elem.kind == "scalar" and t.elem.name in NUMPY_DTYPE:
                return f"numpy array of {NUMPY_DTYPE[t.elem.name]}"
            return f"list of {python_type(t.elem, returned=returned)}"
        case "tuple":
            return f"tuple[{', '.join(python_type(i, returned=returned) for i in t.items)}]"
    return t.rust


def check_scalar(where: str, name: str, obj: Any) -> Any:
    """``obj`` as a value of the scalar Rust type ``name``, or the error naming ``where``.

    bool is not a number here (Python's ``True == 1`` would let a flag pass for a count)."""
    if name in NUMERIC and is_bool(obj):
        kind = "an int" if name in INTEGERS else "a float"
        raise TypeError(f"{where} expects {name} ({kind}), got {describe(obj)}: a bool is not a "
                        "number here; pass int(flag) if that is meant")  # fmt: skip
    if name in INTEGERS:
        if isinstance(obj, float):
            raise TypeError(f"{where} expects {name} (an int), got float {obj!r}: "
                            "convert explicitly, floats are never truncated")  # fmt: skip
        try:
            value = operator.index(obj)
        except TypeError:
            raise TypeError(f"{where} expects {name} (an int), got {describe(obj)}") from None
        lo, hi = INTEGERS[name]
        if not lo <= value <= hi:
            raise OverflowError(f"{where} expects {name} ({lo}..={hi}), got {value}")
        return value
    if name in ("f32", "f64"):
        if isinstance(obj, (str, bytes, bytearray, complex)) or not (
            hasattr(type(obj), "__float__") or hasattr(type(obj), "__index__")
        ):
            raise TypeError(f"{where} expects {name} (a float), got {describe(obj)}")
        try:
            number = float(obj)
        except OverflowError:
            raise OverflowError(f"{where} expects {name}, got {obj!r}: too large for a "
                                "float") from None  # fmt: skip
        if name == "f32" and math.isfinite(number) and abs(number) > 3.4028234663852886e38:
            raise OverflowError(f"{where} expects f32, got {number!r}: beyond f32's range")
        return number
    if name == "bool":
        if obj is True or obj is False:
            return obj
        np = sys.modules.get("numpy")
        if np is not None and isinstance(obj, np.bool_):
            return bool(obj)
        raise TypeError(f"{where} expects bool (True or False), got {describe(obj)}")
    if name == "char":
        if isinstance(obj, str):
            if len(obj) == 1 and not 0xD800 <= ord(obj) <= 0xDFFF:
                return obj
            if len(obj) != 1:
                raise TypeError(f"{where} expects char (a 1-character str), got a str of "
                                f"length {len(obj)}")  # fmt: skip
            raise ValueError(f"{where} expects char, got {obj!r}: a lone surrogate is not "
                             "a Rust char")  # fmt: skip
        raise TypeError(f"{where} expects char (a 1-character str), got {describe(obj)}")
    raise AssertionError(name)


def is_bool(obj: Any) -> bool:
    if isinstance(obj, bool):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.bool_)


def _address(view: memoryview) -> int | None:
    """The buffer's start address, when it can be read without copying."""
    try:
        import ctypes

        if view.readonly:
            return None
        return ctypes.addressof(ctypes.c_char.from_buffer(view))
    except (TypeError, ValueError):
        return None
