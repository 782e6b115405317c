"""Building and importing the dispatcher trampoline (see trampoline.rs)."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import sysconfig
import tempfile
import threading
from importlib import resources
from pathlib import Path
from types import ModuleType

from symbiont._codegen import abi_source
from symbiont._compile import Toolchain, library_suffix
from symbiont._errors import BuildError, ToolchainError

_MODULE = "_symbiont_trampoline"
_ATTRIBUTES = "#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]\n"
_lock = threading.Lock()
_loaded: ModuleType | None = None


def interpreter_problem(gil_disabled: object, implementation: str) -> str | None:
    """Why this interpreter cannot run symbiont's native glue (None when it can).

    The glue is correct only under the GIL: libraries are unloaded when no call can be running
    because a call keeps the GIL (see the invariant in codegen/rt.rs), entries read the object
    header of the default build, and the registry of lent memory is changed under the GIL."""
    if gil_disabled:
        return (
            "symbiont's native glue needs a CPython with the GIL; this is a free-threaded build "
            "(python3.13t or later, Py_GIL_DISABLED=1): run it with a regular CPython 3.11+"
        )
    if implementation != "cpython":
        return f"symbiont needs CPython, not {implementation}"
    return None


def check_interpreter() -> None:
    """Refuses an interpreter the glue cannot run on; called when symbiont is imported."""
    problem = interpreter_problem(
        sysconfig.get_config_var("Py_GIL_DISABLED"), sys.implementation.name
    )
    if problem is not None:
        raise ToolchainError(problem)


def trampoline_source() -> str:
    """trampoline.rs with the shared ABI declarations (codegen's abi.rs) after its attributes."""
    text = resources.files("symbiont._load").joinpath("trampoline.rs").read_text("utf-8")
    head, sep, rest = text.partition(_ATTRIBUTES)
    if not sep:  # pragma: no cover - a packaging error
        raise BuildError("trampoline.rs lost its crate attributes line")
    return f"{head}{sep}\n{abi_source()}{rest}"


def trampoline(toolchain: Toolchain, cache_dir: Path) -> ModuleType:
    """The trampoline module: built into ``cache_dir`` once, imported once per process."""
    global _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        source = trampoline_source()
        key = hashlib.sha256(
            "\0".join((source, toolchain.verbose_version, sys.version)).encode()
        ).hexdigest()[:24]
        target = cache_dir / "trampoline" / f"{_MODULE}-{key}{library_suffix()}"
        if not target.exists():
            _compile(toolchain, source, target)
        _loaded = _import(target)
        return _loaded


def trampoline_path() -> Path:
    """The file the trampoline of this process was imported from (after :func:`trampoline`)."""
    if _loaded is None or _loaded.__file__ is None:
        raise BuildError("the trampoline is not loaded in this process")
    return Path(_loaded.__file__)


def trampoline_from(path: Path) -> ModuleType:
    """The trampoline imported from a library built elsewhere (by the driver of a cluster),
    so that nodes need no rustc."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _import(path)
        return _loaded


def _import(target: Path) -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader(_MODULE, str(target))
    spec = importlib.util.spec_from_file_location(_MODULE, target, loader=loader)
    if spec is None:  # pragma: no cover
        raise BuildError(f"cannot import the trampoline from {target}")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _compile(toolchain: Toolchain, source: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"tramp-{os.getpid()}-", dir=target.parent) as tmp:
        src = Path(tmp) / "trampoline.rs"
        src.write_text(source, encoding="utf-8")
        out = Path(tmp) / f"out{library_suffix()}"
        cmd = [
            toolchain.rustc,
            "--edition",
            "2021",
            "--crate-type",
            "cdylib",
            "--crate-name",
            _MODULE,
            "-C",
            "opt-level=3",
            "-C",
            "panic=abort",  # it never unwinds into Python; a panic here is a bug worth a stop
            "-C",
            "strip=debuginfo",
            str(src),
            "-o",
            str(out),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ToolchainError(f"could not run rustc for the trampoline: {exc}") from exc
        if proc.returncode != 0:
            hint = ""
            if "linker" in proc.stderr and "not found" in proc.stderr:
                hint = "\nrustc needs a C linker: install gcc (Debian/Ubuntu: apt install gcc)"
            raise ToolchainError(
                f"rustc could not build symbiont's trampoline:\n{proc.stderr[-3000:]}{hint}"
            )
        os.replace(out, target)


check_interpreter()
