"""Finding rustc and reading its version."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass

from symbiont._errors import ToolchainError

# `c"..."` literals in the generated glue need Rust 1.77.
MIN_RUST = (1, 77)
_INSTALL_HINT = "install Rust (https://rustup.rs) or put rustc on PATH (or set SYMBIONT_RUSTC)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Toolchain:
    """A usable rustc: its path, ``rustc -vV`` output, release and host triple."""

    rustc: str
    verbose_version: str
    release: tuple[int, int, int]
    host: str

    @property
    def version(self) -> str:
        return ".".join(map(str, self.release))


_lock = threading.Lock()
_found: dict[str, Toolchain] = {}


def find_toolchain(rustc: str | None = None) -> Toolchain:
    """The rustc named by ``rustc``, ``$SYMBIONT_RUSTC`` or found on PATH.

    Raises :class:`ToolchainError` naming the fix when it is missing, broken or too old.
    """
    name = rustc or os.environ.get("SYMBIONT_RUSTC") or "rustc"
    with _lock:
        if name in _found:
            return _found[name]
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"rustc not found ({name!r}): {_INSTALL_HINT}")
    try:
        out = subprocess.run([path, "-vV"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainError(f"{path} -vV failed ({exc}): {_INSTALL_HINT}") from exc
    if out.returncode != 0:
        raise ToolchainError(
            f"{path} -vV exited with {out.returncode}: {out.stderr.strip()[:500]}\n"
            "If this is a rustup shim, run `rustup default stable`."
        )
    release = re.search(r"^release: (\d+)\.(\d+)\.(\d+)", out.stdout, re.M)
    host = re.search(r"^host: (\S+)", out.stdout, re.M)
    if release is None or host is None:
        raise ToolchainError(f"cannot read the version of {path}: {out.stdout[:300]!r}")
    major, minor, patch = (int(x) for x in release.groups())
    if (major, minor) < MIN_RUST:
        raise ToolchainError(
            f"rustc {major}.{minor}.{patch} is too old: symbiont needs Rust "
            f"{MIN_RUST[0]}.{MIN_RUST[1]} or newer (`rustup update stable`)"
        )
    tc = Toolchain(
        rustc=path, verbose_version=out.stdout, release=(major, minor, patch), host=host.group(1)
    )
    with _lock:
        _found[name] = tc
    return tc
