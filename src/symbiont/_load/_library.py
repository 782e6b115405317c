"""A loaded revision library, its keeper object, and the reaper that unloads dead libraries.

The keeper is the ``self`` every entry point of the library receives. Dispatchers, revision
handles and calls in flight that may run Python code hold strong references to it (see
the invariant in codegen/rt.rs), so once it has died no code of the library can run again. The
library is not unloaded in the keeper's deallocation, which may happen inside the library's own
epilogue, but by :func:`reap`, called from Python code at safe points (loading another library,
activating or registering a revision).
"""

from __future__ import annotations

import ctypes
import gc
import itertools
import logging
import sys
import threading
import weakref
from pathlib import Path
from typing import Any, NoReturn

from symbiont._codegen import (
    ENTRY_PREFIX,
    GLUE_ABI,
    INIT_SYMBOL,
    MAP_INPUT,
    MAP_PREFIX,
    vectorisable,
)
from symbiont._decl import FunctionDecl, SourceMap
from symbiont._errors import BuildError, PanicError, TimeoutError
from symbiont._load import _records
from symbiont._load._boundary import ArgumentChecker, Cell

log = logging.getLogger("symbiont.load")

_RTLD_LOCAL = getattr(ctypes, "RTLD_LOCAL", 0)
_RTLD_NOW = 2

_lock = threading.Lock()
_ids = itertools.count()
# id -> (weak reference to the keeper, dlopen handle, file name)
_live: dict[int, tuple[weakref.ref[Library], int, str]] = {}


def reap() -> int:
    """Unloads every library whose keeper has died; returns how many were unloaded.

    Safe from any Python code: a dead keeper means no dispatcher, handle or pinned call can
    reach the library, and an unpinned call never lets Python code run until it has returned.
    """
    if sys.is_finalizing():
        return 0
    with _lock:
        dead = [i for i, (ref, _, _) in _live.items() if ref() is None]
        entries = [_live.pop(i) for i in dead]
    if not entries:
        return 0
    import _ctypes

    for _, handle, name in entries:
        _ctypes.dlclose(handle)
        log.debug("unloaded %s", name)
    return len(entries)


_reap_wanted = False


def reap_after_collection() -> None:
    """For a finalizer (a Runtime being collected): reap once the collection has finished.

    A finalizer runs before the garbage is freed, so the libraries of a collected runtime are
    still referenced then; the reap runs from a ``gc`` callback at the end of the collection,
    when their keepers have died. A collection happens while Python code allocates, never
    between a keeper's death inside its library and that library's return (freeing a keeper
    runs no Python code), so the reaper's rule holds there too.
    """
    global _reap_wanted
    _reap_wanted = True
    if _after_collection not in gc.callbacks:
        gc.callbacks.append(_after_collection)


def _after_collection(phase: str, info: dict[str, int]) -> None:
    global _reap_wanted
    if phase != "stop" or not _reap_wanted:
        return
    # Never wait for the lock here: this thread may hold it (a collection can start inside
    # reap() or a load). The holder, or the next safe point, reaps instead.
    if _lock.acquire(blocking=False):
        _lock.release()
        _reap_wanted = False
        reap()


def loaded_count() -> int:
    """Libraries currently mapped by this process (alive or awaiting the reaper)."""
    with _lock:
        return len(_live)


class Library:
    """One loaded revision library (the keeper passed to its entry points as ``self``)."""

    __slots__ = (
        "__weakref__", "_checkers", "_dtypes", "_shared", "code", "entries", "functions",
        "map_entries", "path", "revision", "source_map",
    )  # fmt: skip

    def __init__(
        self,
        path: Path,
        functions: tuple[FunctionDecl, ...],
        *,
        api: int,
        code: str = "",
        insertions: tuple[tuple[int, str], ...] = (),
    ) -> None:
        """Loads ``path``. ``api`` is the trampoline's table address; ``code`` (the layout the
        library was built from) and ``insertions`` (the guards added to it) map panic locations
        back to the written code."""
        reap()
        self.path = path
        self.functions = functions
        self.code = code
        self.source_map = SourceMap.with_insertions(code, insertions)
        self.revision: int | None = None
        self._checkers = tuple(ArgumentChecker(f) for f in functions)
        self._shared = _records.shared_decls(functions)  # struct/enum results, by name
        self._dtypes: dict[str, Any] = {}
        try:
            # PyDLL: the one ctypes call made here (init) keeps the GIL.
            dll = ctypes.PyDLL(str(path), mode=_RTLD_LOCAL | _RTLD_NOW)
        except OSError as exc:
            raise BuildError(f"cannot load {path}: {exc}") from exc
        init = dll[INIT_SYMBOL]
        init.restype = ctypes.c_uint32
        init.argtypes = [ctypes.c_void_p]
        abi = init(api)
        if abi != GLUE_ABI:
            import _ctypes

            _ctypes.dlclose(dll._handle)
            raise BuildError(f"{path} was built for glue ABI {abi}, expected {GLUE_ABI}")
        try:
            self.entries: tuple[int, ...] = tuple(
                ctypes.cast(dll[f"{ENTRY_PREFIX}{i}"], ctypes.c_void_p).value or 0
                for i in range(len(functions))
            )
            # Vectorised entries, by function index (scalar functions only).
            self.map_entries: dict[int, int] = {
                i: ctypes.cast(dll[f"{MAP_PREFIX}{i}"], ctypes.c_void_p).value or 0
                for i, f in enumerate(functions)
                if vectorisable(f)
            }
        except AttributeError as exc:
            import _ctypes

            _ctypes.dlclose(dll._handle)
            raise BuildError(f"{path} lacks an entry point symbiont generates: {exc}") from exc
        with _lock:
            _live[next(_ids)] = (weakref.ref(self), dll._handle, path.name)

    def __repr__(self) -> str:
        return f"<symbiont library {self.path.name} revision={self.revision}>"

    # Callbacks from the generated glue (rt.rs): error paths only.

    def _arity(self, fi: int, nargs: int) -> NoReturn:
        self._checkers[fi].arity(nargs)

    def _coerce(self, fi: int, pi: int, obj: Any, retry: int) -> Any:
        if pi <= MAP_INPUT:  # an input array of a vectorised call
            f = self.functions[fi]
            p = f.params[MAP_INPUT - pi]
            raise TypeError(
                f"{f.name}.map(): argument {MAP_INPUT - pi + 1} '{p.name}' must reach the native "
                f"loop as a 1-D, C-contiguous, aligned buffer of {p.type.rust} with a step of 0 "
                f"or 1 covering every element; got {type(obj).__name__}"
            )
        if pi < 0:  # an internal argument of a vectorised call: prepared by symbiont itself
            raise TypeError(
                f"{self.functions[fi].name}: invalid internal argument {pi} of a vectorised "
                f"call: {obj!r}"
            )
        t = self.functions[fi].params[pi].type
        where = self._checkers[fi].where(pi)
        if t.kind == "option":  # None never gets here
            assert t.elem is not None
            t, where = t.elem, f"{where} (None or a value)"
        if t.kind == "enum":
            return _records.coerce_enum(where, t, obj)
        if t.kind in ("struct", "ref") or (t.elem is not None and t.elem.kind == "struct"):
            return _records.coerce_struct(where, t, obj, bool(retry))
        return self._checkers[fi].coerce_as(where, t, obj, bool(retry))

    def _record_class(self, name: str) -> tuple[type, int]:
        """The record class of struct ``name`` and where its first field slot is."""
        decl = self._shared[name]
        return _records.record_class(decl), _records.record_layout(decl)

    def _vec(self, dtype: str, data: bytearray) -> Any:
        found = self._dtypes.get(dtype)  # not `or`: a dtype without fields is falsy (len 0)
        return _records.numpy().frombuffer(data, self._dtype(dtype) if found is None else found)

    def _vec_owned(self, dtype: str, capsule: Any, address: int, n: int) -> Any:
        return _records.owned_array(self._dtype(dtype), capsule, address, n)

    def _dtype(self, name: str) -> Any:
        decl = self._shared.get(name)
        dtype = _records.dtype_of(decl) if decl is not None else _records.scalar_dtype(name)
        self._dtypes[name] = dtype
        return dtype

    def _variant(self, name: str, index: int, fields: tuple[Any, ...]) -> Any:
        return _records.variant(self._shared[name], index, fields)

    def _record_set(self, fi: int, pi: int, obj: Any, data: bytes) -> None:
        t = self.functions[fi].params[pi].type
        assert t.elem is not None
        _records.write_record(self._checkers[fi].where(pi), t.elem.decl, obj, data)

    def _enum(self, name: str, value: int) -> Any:
        return _records.enum_member(self._shared[name], value, name)

    def _cell_get(self, fi: int, pi: int, obj: Any) -> Any:
        return self._checkers[fi].cell_get(pi, obj)

    def _cell_set(self, fi: int, pi: int, obj: Cell, value: Any) -> None:
        obj.value = value

    def _alias(self, fi: int, pi: int, pj: int) -> NoReturn:
        if pi < 0:  # the vectorised entry's out= (the Python front copies such inputs)
            raise ValueError(
                f"{self.functions[fi].name}.map(): argument {pj + 1} shares memory with out=, "
                "which the call writes: pass a copy"
            )
        self._checkers[fi].alias(pi, pj)

    def _busy(self, fi: int, pi: int) -> NoReturn:
        f = self.functions[fi]
        what = "out=" if pi < 0 else f"argument {pi + 1} '{f.params[pi].name}'"
        raise ValueError(
            f"{f.name}(): {what} shares memory with an array that a call in another thread "
            "(rt.map, rt.nogil) is using with the GIL released; Rust forbids two live references "
            "to memory when one of them writes it: wait for that call to finish, or pass a copy"
        )

    def _timeout(self, fi: int, timeout_ns: int) -> NoReturn:
        rev = f" (revision {self.revision})" if self.revision is not None else ""
        raise TimeoutError(
            f"{self.functions[fi].name}{rev} did not finish within its deadline of "
            f"{timeout_ns / 1e9:g} s and was stopped"
        )

    def _panic(self, fi: int, message: str, file: str, line: int, column: int) -> NoReturn:
        if file == "candidate.rs" and line and column:
            # Location::column counts display cells (a tab is four); a 1-based character
            # column of the written code is what symbiont reports.
            where = self.source_map.written_position(line, column, "display")
            if where is not None:
                line, column = where
        raise PanicError(
            message,
            function=self.functions[fi].name,
            revision=self.revision,
            file=file or None,
            line=line or None,
            column=column or None,
        )
