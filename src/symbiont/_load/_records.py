"""The prelude's shared types on the Python side (``rt.types``).

A ``#[repr(C)]`` struct is a numpy structured dtype: ``rt.types.Candle.dtype``, records built
with ``rt.types.Candle(open=..., ...)`` (keyword-only, every field required, range-checked like
scalar arguments), structured arrays for slices. A fieldless enum is an ``enum.IntEnum``.
This module also explains why an object cannot stand for a struct or enum parameter (the
generated glue only calls here once its fast path failed), naming the first differing field.
"""

from __future__ import annotations

import enum
import functools
import operator
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar, NoReturn

from symbiont._decl import (
    DataEnumDecl,
    Declarations,
    EnumDecl,
    Field,
    FunctionDecl,
    RustType,
    StructDecl,
)
from symbiont._load._boundary import check_scalar, describe


@functools.cache
def dtype_of(decl: StructDecl) -> Any:
    """The numpy dtype of a struct (aligned, the declared field order and offsets)."""
    import numpy as np

    spec: Any = decl.dtype_spec()
    return np.dtype(spec)


@functools.cache
def enum_class(decl: EnumDecl) -> type[enum.IntEnum]:
    cls = enum.IntEnum(decl.name, list(decl.variants))  # type: ignore[misc]
    cls.__doc__ = decl.doc or f"The Rust enum `{decl.name}` (#[repr({decl.repr})])."
    cls.__module__ = "symbiont.types"
    return cls


class Record:
    """Base of the record classes of ``rt.types``: one slotted dataclass per ``#[repr(C)]``
    struct, e.g. ``rt.types.Candle(open=1.0, ...)`` (keyword-only, every field required,
    range-checked like scalar arguments). Fields are Python numbers and bools, nested records,
    and tuples for fixed-size arrays. The native glue reads and makes these records without
    calling Python, so passing and returning one costs about as much as a few floats; numpy
    records (``arr[i]``) are accepted wherever a record is. ``Candle.dtype`` is the matching
    numpy structured dtype, ``Candle.zeros(n)`` a structured array, ``rec.to_numpy()`` the
    record as a numpy record.
    """

    __slots__ = ()
    dtype: ClassVar[Any]
    _decl: ClassVar[StructDecl]

    def __init__(self, *args: Any, **fields: Any) -> None:
        cls = type(self)
        if args:
            raise TypeError(f"{cls.__name__}() takes keyword arguments only, one per field: "
                            f"{', '.join(f.name for f in cls._decl.fields)}")  # fmt: skip
        for name, value in _field_values(cls._decl, fields, f"{cls.__name__}()").items():
            object.__setattr__(self, name, value)

    def __getitem__(self, name: str) -> Any:
        """``rec["close"]``, as on a numpy record."""
        if name not in type(self)._fields:
            raise KeyError(f"{type(self).__name__} has no field {name!r}; fields: "
                           f"{', '.join(type(self)._fields)}")  # fmt: skip
        return getattr(self, name)

    _fields: ClassVar[tuple[str, ...]] = ()

    def to_numpy(self) -> Any:
        """This record as a numpy record of ``dtype``."""
        return numpy().array(plain(self), dtype=self.dtype)[()]

    @classmethod
    def zeros(cls, n: int) -> Any:
        """A structured array of ``n`` zeroed records of this struct."""
        return numpy().zeros(n, cls.dtype)


def plain(value: Any) -> Any:
    """A record as nested tuples (what numpy takes for a structured value)."""
    if isinstance(value, Record):
        return tuple(plain(getattr(value, n)) for n in type(value)._fields)
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value


@functools.cache
def record_class(decl: StructDecl) -> type[Record]:
    """The record class of a struct; cached, so every revision and runtime with the same
    struct shares it (the glue keeps its address)."""
    import dataclasses

    fields = [(f.name, Any) for f in decl.fields]
    cls: type[Record] = dataclasses.make_dataclass(
        decl.name, fields, bases=(Record,), init=False, slots=True, eq=True, repr=True
    )
    cls.__module__ = "symbiont.types"
    cls.__qualname__ = decl.name
    described = "\n".join(f"    {f.name}: {f.rust}" for f in decl.fields)
    cls.__doc__ = (decl.doc + "\n\n" if decl.doc else "") + (
        f"The #[repr(C)] struct `{decl.name}` (see symbiont's Record):\n{described}"
    )
    cls._decl = decl
    cls._fields = tuple(f.name for f in decl.fields)
    cls.dtype = dtype_of(decl)
    return cls


@functools.cache
def record_layout(decl: StructDecl) -> int:
    """The offset of the first field slot of ``cls``'s instances, checked: the glue reads
    the field that comes ``i``-th in sorted name order at ``offset + 8 * i`` (CPython sorts a
    class's slots by name)."""
    import ctypes

    cls = record_class(decl)
    n = len(cls._fields)
    base = object.__basicsize__
    width = ctypes.sizeof(ctypes.c_void_p)
    if cls.__basicsize__ != base + width * n:
        raise RuntimeError(f"symbiont: unexpected layout of record class {cls.__name__}")
    probe = object.__new__(cls)
    markers = [object() for _ in range(n)]
    for name, marker in zip(cls._fields, markers, strict=True):
        object.__setattr__(probe, name, marker)
    order = sorted(range(n), key=lambda i: cls._fields[i])
    for slot, i in enumerate(order):
        if ctypes.c_void_p.from_address(id(probe) + base + width * slot).value != id(markers[i]):
            raise RuntimeError(f"symbiont: unexpected layout of record class {cls.__name__}")
    return base


def _field_values(decl: StructDecl, values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Every field's value (nothing else), checked and converted to what a record holds."""
    names = [f.name for f in decl.fields]
    missing = [n for n in names if n not in values]
    unknown = [n for n in values if n not in names]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing field(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown field(s) {', '.join(unknown)}")
        raise TypeError(f"{where}: {'; '.join(parts)} (fields: {', '.join(names)})")
    return {
        f.name: _array_value(f, values[f.name], f.shape, f"{where} field '{f.name}'")
        for f in decl.fields
    }


def _array_value(f: Field, value: Any, shape: tuple[int, ...], at: str) -> Any:
    if not shape:
        if f.struct is not None:
            return _record_value(f.struct, value, at)
        return check_scalar(at, f.scalar, value)
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__"):
        raise TypeError(f"{at} expects {f.rust}: a sequence of {shape[0]}, got {describe(value)}")
    items = list(value)
    if len(items) != shape[0]:
        raise ValueError(f"{at} expects {f.rust}: {shape[0]} elements, got {describe(value)}")
    return tuple(_array_value(f, x, shape[1:], f"{at} (an element)") for x in items)


def _record_value(decl: StructDecl, value: Any, at: str) -> Record:
    cls = record_class(decl)
    if type(value) is cls:
        return value
    if isinstance(value, Record):
        value = {n: getattr(value, n) for n in type(value)._fields}
    elif getattr(getattr(value, "dtype", None), "names", None) and getattr(value, "size", 0) == 1:
        value = numpy().asarray(value).reshape(())[()]
        value = {n: value[n] for n in value.dtype.names}
    if not isinstance(value, Mapping):
        raise TypeError(f"{at} expects {decl.name}: a record (rt.types.{decl.name}(...)), a dict "
                        f"of its fields or a numpy record, got {describe(value)}")  # fmt: skip
    record = object.__new__(cls)
    for name, v in _field_values(decl, value, at).items():
        object.__setattr__(record, name, v)
    return record


def _field_type(dtype: Any) -> str:
    base, shape = (dtype.base, dtype.shape) if dtype.subdtype else (dtype, ())
    kind = "struct" if base.names else str(base)
    return f"{kind}{list(shape) if shape else ''}"


def dtype_problem(got: Any, decl: StructDecl) -> str | None:
    """How a structured dtype differs from the struct's, naming the first differing field."""
    want = dtype_of(decl)
    if got.names is None:
        return f"a dtype of {got}, not a structured dtype"
    if got == want and got.itemsize == want.itemsize:
        return None
    for i, f in enumerate(decl.fields):
        if i >= len(got.names):
            return f"field '{f.name}' ({f.rust}) is missing (the dtype has {', '.join(got.names)})"
        gname = got.names[i]
        if gname != f.name:
            return (f"field {i + 1} is '{gname}', expected '{f.name}' (fields in declared "
                    f"order: {', '.join(x.name for x in decl.fields)})")  # fmt: skip
        gtype, goffset = got.fields[gname][:2]
        wtype = want.fields[f.name][0]
        if f.struct is not None:
            base = gtype.base if gtype.subdtype else gtype
            inner = dtype_problem(base, f.struct) if base.names else "not a structured field"
            if inner or gtype.shape != wtype.shape:
                return f"field '{f.name}' ({f.rust}): {inner or 'its shape differs'}"
        elif gtype != wtype:
            return (f"field '{f.name}' is {_field_type(gtype)}, expected {_field_type(wtype)} "
                    f"({f.rust})")  # fmt: skip
        if goffset != f.offset:
            return (f"field '{f.name}' is at byte offset {goffset}, expected {f.offset} "
                    "(#[repr(C)] alignment; build arrays with the struct's .dtype)")  # fmt: skip
    if len(got.names) > len(decl.fields):
        return f"it has an extra field '{got.names[len(decl.fields)]}'"
    return f"its records are {got.itemsize} bytes, expected {want.itemsize}"


def record_problem(obj: Any, decl: StructDecl, *, single: bool) -> str | None:
    """Why ``obj`` is not a record (``single``) or an array of records of the struct."""
    import numpy as np

    dtype = getattr(obj, "dtype", None)
    if not isinstance(dtype, np.dtype):
        return f"got {describe(obj)}"
    problem = dtype_problem(dtype, decl)
    if problem:
        return f"got an object of another dtype: {problem}"
    if single and getattr(obj, "size", 1) != 1:
        return f"a single record, got {describe(obj)}"
    return None


def _bool_problem(arr: Any, decl: StructDecl) -> bool:
    import numpy as np

    offsets = list(decl.bool_offsets())
    if not offsets or arr.size == 0:
        return False
    raw = np.ascontiguousarray(arr).reshape(-1).view(np.uint8).reshape(-1, decl.size)
    return bool((raw[:, offsets] > 1).any())


def coerce_struct(where: str, t: RustType, obj: Any, retry: bool) -> Any:
    """An equivalent object the glue can take for struct parameter ``t``, or the error."""
    import numpy as np

    elem = t if t.kind == "struct" else t.elem
    assert elem is not None
    decl: StructDecl = elem.decl
    single = t.kind in ("struct", "ref", "mut_ref")
    writable = t.mutable or t.kind == "mut_ref"
    want = f"{t.rust}: " + (
        f"a {decl.name} record (rt.types.{decl.name}(...), a numpy structured array's element "
        f"or a 1-element structured array of rt.types.{decl.name}.dtype)"
        if single
        else f"a C-contiguous {'writable ' if writable else ''}structured array of "
        f"rt.types.{decl.name}.dtype"
    )
    if isinstance(obj, Record) and single:
        # A record the glue could not read natively: a field of another type (checked here,
        # naming it) or a record class of another process; numpy carries the checked copy.
        checked = _record_value(decl, {n: getattr(obj, n) for n in type(obj)._fields}, where)
        if retry:
            return numpy().array(plain(checked), dtype=dtype_of(decl)).reshape(1)
        raise TypeError(f"{where} expects {want}, got {describe(obj)}")
    problem = record_problem(obj, decl, single=single)
    if problem:
        raise TypeError(f"{where} expects {want}, {problem}")
    arr = np.asarray(obj)
    if _bool_problem(arr, decl):
        raise ValueError(f"{where} expects {want}, got a record holding a byte other than 0 "
                         "or 1 in a bool field, which is not a valid bool")  # fmt: skip
    copyable = t.kind in ("struct", "ref") or (
        t.kind == "mut_ref" and not isinstance(obj, np.ndarray)
    )
    if copyable:
        if retry:  # a by-value record is copied anyway: any layout of the same fields will do
            return np.array(arr, dtype=dtype_of(decl)).reshape(1)
    else:
        if not arr.flags.c_contiguous:
            raise ValueError(f"{where} expects {want}, got a non-contiguous array "
                             f"({describe(obj)}): pass np.ascontiguousarray(...)")  # fmt: skip
        if arr.ctypes.data % decl.align:
            raise ValueError(f"{where} expects {want}, got a misaligned array (its data is "
                             f"not at a multiple of {decl.align} bytes): pass a copy")  # fmt: skip
        if writable and not arr.flags.writeable:
            raise TypeError(f"{where} expects {want}, got a read-only {describe(obj)}")
        if t.kind == "mut_ref" and arr.size != 1:
            raise ValueError(f"{where} expects {want}, got {describe(obj)}")
        if retry:
            return arr.view(dtype_of(decl))
    raise TypeError(f"{where} expects {want}, got {describe(obj)}")


def coerce_enum(where: str, t: RustType, obj: Any) -> int:
    decl: EnumDecl = t.decl
    cls = enum_class(decl)
    values = ", ".join(f"{n}={v}" for n, v in decl.variants)
    if isinstance(obj, bool) or (isinstance(obj, enum.Enum) and not isinstance(obj, cls)):
        raise TypeError(f"{where} expects {t.rust} (rt.types.{decl.name}: {values}), got "
                        f"{describe(obj)}")  # fmt: skip
    try:
        value = operator.index(obj)
    except TypeError:
        raise TypeError(f"{where} expects {t.rust} (rt.types.{decl.name}: {values}), got "
                        f"{describe(obj)}") from None  # fmt: skip
    if value not in {v for _, v in decl.variants}:
        raise ValueError(f"{where} expects {t.rust} ({values}), got {value}, which is not a "
                         f"value of {decl.name}")  # fmt: skip
    return value


def shared_decls(functions: Iterable[FunctionDecl]) -> dict[str, Any]:
    """The structs and enums the functions' results and parameters name, by name."""
    found: dict[str, Any] = {}

    def walk(t: RustType | None) -> None:
        if t is None:
            return
        if t.kind in ("struct", "enum") and t.name not in found:
            found[t.name] = t.decl
            for ft in getattr(t.decl, "field_types", ()):
                walk(ft)
            for field in getattr(t.decl, "fields", ()):
                if getattr(field, "struct", None) is not None:
                    walk(RustType("struct", name=field.struct.name, decl=field.struct))
        walk(t.elem)
        for item in t.items:
            walk(item)

    for f in functions:
        walk(f.ret)
        for p in f.params:
            walk(p.type)
    return found


@functools.cache
def scalar_dtype(name: str) -> Any:
    import numpy as np

    return np.dtype(name)


class _Owned:
    """Lends a Rust ``Vec``'s buffer to numpy (``__array_interface__``) and keeps the capsule
    that frees it: the array's ``base``, so the buffer lives exactly as long as the array."""

    __slots__ = ("__array_interface__", "_capsule")

    def __init__(self, dtype: Any, capsule: Any, address: int, n: int) -> None:
        self._capsule = capsule
        self.__array_interface__ = {
            "version": 3,
            "shape": (n,),
            "typestr": dtype.str,  # structured: raw records of the itemsize, viewed below
            "data": (address, False),
        }


def owned_array(dtype: Any, capsule: Any, address: int, n: int) -> Any:
    import numpy as np

    arr = np.asarray(_Owned(dtype, capsule, address, n))
    return arr.view(dtype) if dtype.names else arr


@functools.cache
def numpy() -> Any:
    """The numpy module, imported on first use (result paths need it per call)."""
    import numpy as np

    return np


def record_from_bytes(decl: StructDecl, data: bytes) -> Any:
    import numpy as np

    return np.frombuffer(bytearray(data), dtype_of(decl))[0]


def write_record(where: str, decl: StructDecl, target: Any, data: bytes) -> None:
    import numpy as np

    new = record_from_bytes(decl, data)
    if isinstance(target, Record):  # one of another process's record classes
        values = {n: new[n] for n in new.dtype.names}
        for name, value in _field_values(decl, values, where).items():
            object.__setattr__(target, name, plain(value) if isinstance(value, tuple) else value)
        return
    try:
        for f in decl.fields:
            target[f.name] = new[f.name]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: the new value cannot be written back into "
                        f"{describe(target)}: {exc}") from None  # fmt: skip
    # Some numpy records drop writes silently (one that was unpickled, for instance).
    if np.asarray(target).tobytes() != np.asarray(new).tobytes():
        raise TypeError(f"{where}: this numpy record does not keep writes to its fields (an "
                        "unpickled record, for one): pass a 1-element structured array "
                        "for a `&mut` struct parameter")  # fmt: skip


def enum_member(decl: EnumDecl, value: int, where: str) -> Any:
    try:
        return enum_class(decl)(value)
    except ValueError:
        raise ValueError(f"{where} returned {value}, which is not a value of {decl.name}") from None


class DataEnum:
    """Base of the variant classes of one enum with data (``rt.types.Action``): each variant
    is a frozen dataclass attribute (``Action.Buy(qty=1.0)``) one can ``match`` on."""

    __slots__ = ()
    variants: tuple[type[DataEnum], ...] = ()


@functools.cache
def data_enum_class(decl: DataEnumDecl) -> type[DataEnum]:
    import dataclasses

    from symbiont._load._boundary import python_type

    base: type[DataEnum] = type(
        decl.name, (DataEnum,), {"__slots__": (), "__module__": "symbiont.types"}
    )
    base.__doc__ = decl.doc or f"The Rust enum `{decl.name}`: one dataclass per variant."
    classes = []
    for v in decl.variants:
        fields = [(f, object) for f, _ in v.fields]
        cls = dataclasses.make_dataclass(v.name, fields, bases=(base,), frozen=True, slots=True)
        cls.__module__ = "symbiont.types"
        cls.__qualname__ = f"{decl.name}.{v.name}"
        described = ", ".join(f"{f}: {t.rust} ({python_type(t, returned=True)})"
                              for f, t in v.fields)  # fmt: skip
        cls.__doc__ = f"`{decl.name}::{v.name}`" + (f" {{ {described} }}" if v.fields else "")
        setattr(base, v.name, cls)
        classes.append(cls)
    base.variants = tuple(classes)
    return base


def variant(decl: DataEnumDecl, index: int, fields: tuple[Any, ...]) -> Any:
    return data_enum_class(decl).variants[index](*fields)


class Types:
    """The prelude's shared types: ``rt.types.Candle`` (a :class:`Record` class),
    ``rt.types.Side`` (an ``enum.IntEnum``)."""

    def __init__(self, decls: Declarations) -> None:
        items: dict[str, Any] = {s.name: record_class(s) for s in decls.structs}
        items.update({e.name: enum_class(e) for e in decls.enums})
        items.update({e.name: data_enum_class(e) for e in decls.data_enums})
        self.__dict__.update(items)
        object.__setattr__(self, "_Types__names", tuple(items))

    def __getattr__(self, name: str) -> NoReturn:
        known = ", ".join(self.__names) or "none"
        raise AttributeError(
            f"no shared type {name!r}; declared: {known} (only #[repr(C)] structs and enums "
            "are shared)"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the shared types are fixed by the declarations")

    def __iter__(self) -> Iterator[str]:
        return iter(self.__names)

    def __repr__(self) -> str:
        return f"<symbiont types {', '.join(self.__names)}>"
