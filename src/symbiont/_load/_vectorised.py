"""Vectorised calls: ``rt.map.f(*arrays, out=None, threads=None, timeout=None)``.

numpy broadcasting happens here, once per call; the element loop runs in Rust with the GIL
released, optionally split over threads (see `run_map` in codegen/rt.rs). Inputs are passed as
1-D buffers with a step of 1, or 0 for a broadcast single value, so a scalar broadcast against
a million points costs nothing; only a genuinely strided broadcast is copied.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from symbiont._decl import NUMPY_DTYPE, FunctionDecl
from symbiont._load._boundary import check_scalar, describe, is_bool
from symbiont._load._revisions import Functions, timeout_ns


class Vectorised:
    """The vectorised form of one scalar function (numpy arrays in, a numpy array out)."""

    __slots__ = ("_native", "decl", "timeout")

    def __init__(
        self, decl: FunctionDecl, native: Callable[..., Any], timeout: float | None
    ) -> None:
        self.decl = decl
        self._native = native
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<symbiont vectorised {self.decl.signature} -> {NUMPY_DTYPE[self.decl.ret.name]}>"

    def __call__(
        self,
        *arrays: Any,
        out: Any = None,
        threads: int | None = None,
        timeout: float | None = None,
        **named: Any,
    ) -> Any:
        import numpy as np

        decl = self.decl
        name = f"{decl.name}.map()"
        if named:
            arrays = self._by_name(name, arrays, named)
        if len(arrays) != len(decl.params):
            raise TypeError(
                f"{name} takes {len(decl.params)} array(s) ({decl.signature}), got {len(arrays)}"
            )
        inputs = [
            _input(f"{name} argument {i + 1} '{param.name}'", param.type.name, value)
            for i, (value, param) in enumerate(zip(arrays, decl.params, strict=True))
        ]
        try:
            shape = np.broadcast_shapes(*(a.shape for a in inputs))
        except ValueError as exc:
            raise ValueError(f"{name}: the arguments do not broadcast together: {exc}") from None
        n = math.prod(shape)
        flat: list[Any] = []
        for a in inputs:
            # Contiguous and aligned ("A"): Rust reads the elements in place, and a misaligned
            # one (a view at an odd offset into raw bytes) would be refused at the boundary.
            if a.size == 1:
                flat += [np.require(a, requirements=("C", "A")).reshape(1), 0]
            else:
                b = np.broadcast_to(a, shape)
                flat += [np.require(b, requirements=("C", "A")).reshape(n), 1]
        ret = np.dtype(NUMPY_DTYPE[decl.ret.name])
        if out is None:
            # Rust may only see valid bools, even in memory it is about to overwrite.
            out = (np.zeros if ret == np.bool_ else np.empty)(shape, dtype=ret)
        elif not isinstance(out, np.ndarray) or out.dtype != ret or out.shape != shape:
            got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
            raise TypeError(
                f"{name} out= must be an ndarray of {ret} with shape {shape}, got {got}"
            )
        elif not (out.flags.c_contiguous and out.flags.writeable and out.flags.aligned):
            raise ValueError(f"{name} out= must be C-contiguous, aligned and writable")
        elif ret == np.bool_:
            out.fill(False)
        for i, a in enumerate(flat[::2]):
            # The loop reads inputs while writing out: an input sharing memory with out would be
            # read after it was overwritten (and alias a &mut in Rust). Such an input is copied.
            if np.may_share_memory(a, out):
                flat[2 * i] = a.copy()
        if threads is None:
            threads = 1
        elif threads == 0:
            threads = os.cpu_count() or 1
        elif not isinstance(threads, int) or threads < 0:
            raise ValueError(f"{name} threads= must be a positive int, 0 (all cores) or None")
        deadline = timeout_ns(self.timeout if timeout is None else timeout)
        if n:
            self._native(out.reshape(n), threads, deadline, *flat)
        return out

    def _by_name(
        self, name: str, arrays: tuple[Any, ...], named: dict[str, Any]
    ) -> tuple[Any, ...]:
        """Positional and keyword inputs in declared order (a parameter called ``out``,
        ``threads`` or ``timeout`` can only be passed by position)."""
        params = [p.name for p in self.decl.params]
        listed = ", ".join(params)
        if len(arrays) > len(params):
            raise TypeError(f"{name} takes {len(params)} array(s) ({self.decl.signature}), got "
                            f"{len(arrays)} positional and {len(named)} keyword")  # fmt: skip
        slots: list[Any] = [*arrays, *([_MISSING] * (len(params) - len(arrays)))]
        for key, value in named.items():
            if key not in params:
                raise TypeError(f"{name} got an unexpected keyword argument '{key}' "
                                f"(parameters: {listed})")  # fmt: skip
            i = params.index(key)
            if slots[i] is not _MISSING:
                raise TypeError(f"{name} got multiple values for argument '{key}'")
            slots[i] = value
        for i, value in enumerate(slots):
            if value is _MISSING:
                raise TypeError(f"{name} missing argument {i + 1} '{params[i]}' "
                                f"(parameters: {listed})")  # fmt: skip
        return tuple(slots)


_MISSING: Any = object()


def _input(where: str, rust: str, value: Any) -> Any:
    """One input as an array of the parameter's dtype, by the conversion policy (README, "One
    conversion policy"): Python numbers and numpy scalars follow the rules of a scalar argument;
    Python lists and tuples are converted element by element under the same rules; anything
    else (numpy arrays, buffers) must already have the exact dtype, which is never changed."""
    import numpy as np

    dtype = np.dtype(NUMPY_DTYPE[rust])
    if isinstance(value, (int, float, np.generic)):
        return np.array(check_scalar(where, rust, value), dtype=dtype)
    if isinstance(value, (list, tuple)):
        a = np.asarray(value)
        wrong = a.dtype.kind not in "iuf" or (dtype.kind in "iu" and a.dtype.kind == "f")
        if wrong or a.dtype.kind in "iu":  # numpy turns [1, True] into ints: look at each
            for x in np.asarray(value, dtype=object).reshape(-1):
                if wrong or is_bool(x):
                    check_scalar(f"{where} (an element)", rust, x)
            if wrong:
                raise TypeError(f"{where} expects {rust} elements, got {describe(value)}")
        if dtype.kind in "iu" and a.size:
            info = np.iinfo(dtype)
            if a.min() < info.min or a.max() > info.max:
                raise OverflowError(f"{where} expects {rust}: values outside "
                                    f"{info.min}..={info.max}")  # fmt: skip
        if dtype == np.float32 and a.size and np.abs(a[np.isfinite(a)]).max(initial=0) > 3.4e38:
            raise OverflowError(f"{where} expects f32: values beyond f32's range")
        return a.astype(dtype)
    a = np.asarray(value)
    if a.dtype != dtype:
        raise TypeError(
            f"{where} expects an array of {dtype} ({rust}), got an array of {a.dtype}: "
            f"rt.map never changes an array's dtype; convert it with .astype(np.{dtype})"
        )
    return a


class Maps(Functions):
    """Vectorised functions, one attribute per scalar function (``rt.map.f(xs)``)."""

    def __init__(self, maps: dict[str, Vectorised], others: tuple[str, ...]) -> None:
        super().__init__(dict(maps), "vectorised")
        object.__setattr__(self, "_Maps__others", others)

    def __getattr__(self, name: str) -> Any:
        if name in self.__others:
            raise AttributeError(
                f"{name} has no vectorised form: only functions whose arguments are numeric "
                "scalars and whose result is a numeric or bool scalar do"
            )
        available = ", ".join(self) or "none"
        raise AttributeError(f"no vectorised function {name!r}; available: {available}")

    def __repr__(self) -> str:
        return f"<symbiont vectorised functions {', '.join(self)}>"
