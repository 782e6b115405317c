"""The revision registry, stable dispatchers and revision handles."""

from __future__ import annotations

import keyword
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from symbiont import _config
from symbiont._codegen import vectorisable
from symbiont._decl import Declarations, FunctionDecl
from symbiont._errors import ConfigError, RevisionError
from symbiont._load._boundary import python_type
from symbiont._load._library import Library


@dataclass(frozen=True, slots=True, kw_only=True)
class Revision:
    """A registered revision: the code, where its library lives and where it came from."""

    number: int
    code: str
    key: str
    library: Path
    created: float
    parent: int | None
    lane: int | None
    build_seconds: float

    def __repr__(self) -> str:
        # The code can be hundreds of lines: rt.code(n) shows it.
        lines = self.code.count("\n") + (not self.code.endswith("\n"))
        return (
            f"Revision(number={self.number}, parent={self.parent}, lane={self.lane}, "
            f"code=<{lines} line(s)>, build_seconds={self.build_seconds:.3f})"
        )


class Functions:
    """Native callables, one attribute per declared function (``fns.step(...)``).

    Each attribute is a real builtin function; iterate for the names, index by name.
    """

    def __init__(
        self, callables: dict[str, Callable[..., Any]], label: str, code: str | None = None
    ) -> None:
        self.__dict__.update(callables)
        object.__setattr__(self, "_Functions__names", tuple(callables))
        object.__setattr__(self, "_Functions__label", label)
        # The code these functions are bound to, when that never changes (a candidate under
        # check, a pinned revision): an evaluator may read it with code_of(fns).
        object.__setattr__(self, "_Functions__code", code)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"no declared function {name!r}; declared: {', '.join(self.__names)}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("these functions are fixed; use rt.activate() to swap revisions")

    def __getitem__(self, name: str) -> Callable[..., Any]:
        if name not in self.__names:
            self.__getattr__(name)  # raises, with the subclass's message
        fn: Callable[..., Any] = self.__dict__[name]
        return fn

    def __iter__(self) -> Iterator[str]:
        return iter(self.__names)

    def __len__(self) -> int:
        return len(self.__names)

    def __dir__(self) -> list[str]:
        return list(self.__names)

    def __repr__(self) -> str:
        return f"<symbiont functions {', '.join(self.__names)} ({self.__label})>"


def _doc(f: FunctionDecl) -> str:
    """The builtin's docstring: CPython reads a first line ``f(a, b)`` followed by ``--`` as
    its ``__text_signature__`` (so inspect.signature shows the parameter names); the rest lists
    each parameter's Rust and Python types and the doc comment, which help() shows."""
    names = [p.name for p in f.params]
    # A Rust name that is a Python keyword cannot be spelled in a signature line.
    spellable = all(n.isidentifier() and not keyword.iskeyword(n) for n in names)
    head = f"{f.name}({', '.join(names)})\n--\n\n" if spellable else ""
    lines = [f"Native Rust function `{f.signature}`."]
    if f.doc:
        lines += ["", f.doc]
    if f.params:
        lines += ["", "Parameters:"]
        lines += [f"    {p.name}: {p.type.rust} -- {python_type(p.type)}" for p in f.params]
    lines += ["", f"Returns: {f.ret.rust} -- {python_type(f.ret, returned=True)}"]
    return head + "\n".join(lines)


def code_of(fns: Functions) -> str:
    """The Rust code behind ``fns`` when it is bound to one candidate or revision: what an
    evaluator is given (to refuse constructs the policy cannot see, such as a method call)
    and ``rt.revision(n).fns``. The dispatchers that follow activations have none:
    ``rt.code()`` is theirs."""
    if not isinstance(fns, Functions):
        raise ConfigError(f"code_of() takes the functions given to an evaluator, got {fns!r}")
    code: str | None = fns._Functions__code
    if code is None:
        raise ConfigError(
            f"{fns!r} follow activations, so no one code is theirs: use rt.code() for the "
            "active revision or rt.revision(n).fns for one revision"
        )
    return code


def make_callables(
    tramp: ModuleType,
    decls: Declarations,
    module: str,
    timeout: float | None = None,
    *,
    release_gil: bool = False,
) -> dict[str, Callable[..., Any]]:
    """New builtins (no target yet) with a per-call deadline of ``timeout`` seconds; they take
    keyword arguments by the declared parameter names. With ``release_gil`` their calls run the
    candidate's code with the GIL released."""
    callables = {
        f.name: tramp.new(f.name, _doc(f), module, tuple(p.name for p in f.params))
        for f in decls.functions
    }
    ns = timeout_ns(timeout)
    for fn in callables.values():
        if ns:
            tramp.set_timeout(fn, ns)
        if release_gil:
            tramp.set_release_gil(fn, True)
    return callables


def catch_sigint(tramp: ModuleType) -> None:
    """Lets Ctrl-C stop a native call of the main thread (trampoline.rs, "Ctrl-C"), while
    Python's handler for it is the default one; a handler of the user's is left alone. Called
    from the main thread whenever a runtime is made or activates a revision, so the handler is
    back after code that swapped SIGINT's handler for a while (asyncio.run) restored the
    default."""
    import signal

    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        tramp.catch_sigint()


def timeout_ns(timeout: float | None) -> int:
    """``timeout`` seconds as the nanoseconds a dispatcher keeps (0: no deadline)."""
    seconds = _config.optional_seconds("timeout", timeout)
    return 0 if seconds is None else max(1, int(seconds * 1e9))


def point(tramp: ModuleType, callables: dict[str, Callable[..., Any]], lib: Library) -> None:
    for fn, entry in zip(callables.values(), lib.entries, strict=True):
        tramp.retarget(fn, entry, lib)


class _MapSet:
    """The native vectorised callables of one namespace, and their Python front (`Maps`)."""

    def __init__(self, tramp: ModuleType, decls: Declarations, module: str,
                 timeout: float | None) -> None:  # fmt: skip
        from symbiont._load._vectorised import Maps, Vectorised

        self.natives: dict[int, Callable[..., Any]] = {}
        fronts: dict[str, Vectorised] = {}
        for i, f in enumerate(decls.functions):
            if vectorisable(f):
                doc = f"Vectorised entry of `{f.signature}`."
                native = tramp.new(f"{f.name}_map", doc, module, ())
                self.natives[i] = native
                fronts[f.name] = Vectorised(f, native, timeout)
        others = tuple(f.name for f in decls.functions if f.name not in fronts)
        self.maps = Maps(fronts, others)

    def point(self, tramp: ModuleType, lib: Library) -> None:
        for i, native in self.natives.items():
            tramp.retarget(native, lib.map_entries[i], lib)


class RevisionHandle:
    """The functions of one revision, pinned: they never follow later activations.
    ``fns`` holds the native functions, ``map`` their vectorised forms."""

    def __init__(self, revision: Revision, fns: Functions, maps: Any) -> None:
        self.revision = revision
        self.fns = fns
        self.map = maps

    @property
    def number(self) -> int:
        return self.revision.number

    @property
    def code(self) -> str:
        return self.revision.code

    def __repr__(self) -> str:
        return f"<symbiont revision {self.revision.number}>"


class RevisionTable:
    """Registered revisions, their loaded libraries and the stable dispatchers.

    Thread-safe: activation and registration may come from any thread; dispatchers read their
    target under the GIL, so one call runs either the old or the new revision, never a mix (an
    activation retargets the functions one after another: two calls in a row from another
    thread may straddle it).

    Memory: the table keeps at most ``max_loaded`` libraries loaded (None: no limit), dropping
    the least recently used revisions that are not active. A dropped library stays mapped while
    a handle or a call still holds it (the reaper unmaps it afterwards); using the revision again
    loads it back through ``reload``.
    """

    def __init__(
        self,
        decls: Declarations,
        tramp: ModuleType,
        module: str,
        timeout: float | None = None,
        *,
        max_loaded: int | None = None,
        reload: Callable[[Revision], Library] | None = None,
    ) -> None:
        self.decls = decls
        self._tramp = tramp
        self._module = module
        self.timeout = timeout
        self.max_loaded = max_loaded
        self._reload = reload
        self._lock = threading.RLock()
        self._revisions: dict[int, Revision] = {}
        # Loaded libraries, least recently used first.
        self._libraries: OrderedDict[int, Library] = OrderedDict()
        self._by_key: dict[str, int] = {}
        self._active: int | None = None
        self._dispatchers = make_callables(tramp, decls, module, timeout)
        self.fns = Functions(self._dispatchers, "stable dispatchers")
        self._maps = _MapSet(tramp, decls, module, timeout)
        self.map = self._maps.maps
        # Dispatchers with other deadlines or releasing the GIL (Runtime.with_timeout,
        # Runtime.nogil): they follow activations too.
        self._timed: dict[tuple[float | None, bool], Functions] = {}
        catch_sigint(tramp)

    @property
    def active(self) -> int | None:
        return self._active

    def __len__(self) -> int:
        return len(self._revisions)

    def numbers(self) -> list[int]:
        with self._lock:
            return sorted(self._revisions)

    def by_key(self, key: str) -> Revision | None:
        with self._lock:
            n = self._by_key.get(key)
            return None if n is None else self._revisions[n]

    def register(
        self,
        *,
        code: str,
        key: str,
        library: Library,
        parent: int | None,
        lane: int | None,
        build_seconds: float,
    ) -> tuple[Revision, bool]:
        """Registers a loaded library; returns the revision and whether it is new.

        A library whose key is already registered returns the existing revision.
        """
        with self._lock:
            existing = self._by_key.get(key)
            if existing is not None:
                return self._revisions[existing], False
            number = len(self._revisions)
            rev = Revision(
                number=number,
                code=code,
                key=key,
                library=library.path,
                created=time.time(),
                parent=parent,
                lane=lane,
                build_seconds=build_seconds,
            )
            library.revision = number
            self._revisions[number] = rev
            self._libraries[number] = library
            self._by_key[key] = number
            self._evict()
            return rev, True

    def _evict(self) -> None:
        if self.max_loaded is None:
            return
        for number in list(self._libraries):
            if len(self._libraries) <= self.max_loaded:
                break
            if number != self._active:
                del self._libraries[number]

    def unload(self, number: int) -> bool:
        """Drops the table's hold on revision ``number``'s library; False if it is active."""
        with self._lock:
            self.get(number)
            if number == self._active:
                return False
            self._libraries.pop(number, None)
            return True

    def loaded(self) -> list[int]:
        """Revisions whose library the table holds, least recently used first."""
        with self._lock:
            return list(self._libraries)

    def get(self, number: int) -> Revision:
        with self._lock:
            try:
                return self._revisions[number]
            except (KeyError, TypeError):
                known = ", ".join(map(str, sorted(self._revisions))) or "none"
                raise RevisionError(f"no revision {number!r}; registered: {known}") from None

    def library(self, number: int) -> Library:
        """Revision ``number``'s library, loaded again if it was dropped.

        Reloading runs without the table's lock held: it may need a rebuild on the background
        loop, whose own registrations take that lock.
        """
        with self._lock:
            rev = self.get(number)
            lib = self._libraries.get(number)
            if lib is not None:
                self._libraries.move_to_end(number)
                return lib
            if self._reload is None:
                raise RevisionError(f"revision {number} is not loaded")
        loaded = self._reload(rev)
        loaded.revision = number
        with self._lock:
            lib = self._libraries.setdefault(number, loaded)
            self._libraries.move_to_end(number)
            self._evict()
            return lib

    def activate(self, number: int) -> Revision:
        lib = self.library(number)
        with self._lock:
            rev = self.get(number)
            self._active = number
            self._libraries[number] = lib  # the active library is always held
            self._libraries.move_to_end(number)
            point(self._tramp, self._dispatchers, lib)
            self._maps.point(self._tramp, lib)
            for fns in self._timed.values():
                point(self._tramp, {n: fns[n] for n in fns}, lib)
        catch_sigint(self._tramp)
        return rev

    def timed(self, timeout: float | None, release_gil: bool = False) -> Functions:
        """Dispatchers that follow activations, with their own per-call deadline (None: no
        deadline), releasing the GIL around their calls or not."""
        with self._lock:
            fns = self._timed.get((timeout, release_gil))
            if fns is None:
                callables = make_callables(
                    self._tramp, self.decls, self._module, timeout, release_gil=release_gil
                )
                if self._active is not None:
                    point(self._tramp, callables, self._libraries[self._active])
                label = "no deadline" if timeout is None else f"deadline {timeout:g} s"
                label += ", GIL released" if release_gil else ""
                fns = self._timed[timeout, release_gil] = Functions(callables, label)
            return fns

    def handle(
        self, number: int, timeout: float | None = None, release_gil: bool = False
    ) -> RevisionHandle:
        rev = self.get(number)
        deadline = self.timeout if timeout is None else timeout
        label = f"pinned to revision {number}" + (", GIL released" if release_gil else "")
        fns, maps = self.pinned(
            self.library(number), label, deadline, release_gil=release_gil, code=rev.code
        )
        return RevisionHandle(rev, fns, maps)

    def pinned(
        self,
        library: Library,
        label: str,
        timeout: float | None = None,
        *,
        release_gil: bool = False,
        code: str | None = None,
    ) -> tuple[Functions, Any]:
        """Functions (and their vectorised forms) bound to a library that is not (or not yet)
        registered; ``code_of`` them is ``code`` (default: the layout the library was built
        from, the same tokens as the candidate's)."""
        callables = make_callables(
            self._tramp, self.decls, self._module, timeout, release_gil=release_gil
        )
        point(self._tramp, callables, library)
        maps = _MapSet(self._tramp, self.decls, self._module, timeout)
        maps.point(self._tramp, library)
        return Functions(callables, label, library.code if code is None else code), maps.maps
