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
    ) -> Any:
        import numpy as np

        decl = self.decl
        name = f"{decl.name}.map()"
        if len(arrays) != len(decl.params):
            raise TypeError(
                f"{name} takes {len(decl.params)} array(s) ({decl.signature}), got {len(arrays)}"
            )
        inputs = []
        for i, (value, param) in enumerate(zip(arrays, decl.params, strict=True)):
            dtype = np.dtype(NUMPY_DTYPE[param.type.name])
            where = f"{name} argument {i + 1} '{param.name}'"
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                # A Python number adapts to the parameter's type, as in numpy's own rules.
                a = _python_scalar(where, param.type.rust, value, dtype)
            else:
                a = np.asarray(value)
            if a.dtype != dtype:
                if a.dtype.kind == "O" or not np.can_cast(a.dtype, dtype, casting="same_kind"):
                    raise TypeError(
                        f"{where} expects an array of {dtype} "
                        f"({param.type.rust}), got an array of {a.dtype}"
                    )
                if a.dtype.kind in "iu" and dtype.kind in "iu":
                    info = np.iinfo(dtype)
                    if a.size and (a.min() < info.min or a.max() > info.max):
                        raise OverflowError(
                            f"{where} expects {param.type.rust}: "
                            f"values outside {info.min}..={info.max}"
                        )
                a = a.astype(dtype)
            inputs.append(a)
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


def _python_scalar(where: str, rust: str, value: float, dtype: Any) -> Any:
    import numpy as np

    if dtype.kind in "iu":
        if not isinstance(value, int):
            raise TypeError(f"{where} expects {rust}, got float {value!r}")
        info = np.iinfo(dtype)
        if not info.min <= value <= info.max:
            raise OverflowError(f"{where} expects {rust} ({info.min}..={info.max}), got {value}")
    return np.array(value, dtype=dtype)


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
