"""Values of the validation layer: the policy, an accepted candidate, a rejection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from symbiont._failures import Failure

# Paths denied by default: a candidate using them (directly, through a `use` alias or a glob
# import) is rejected before it is built. Guidance for honest models, not a sandbox.
DEFAULT_DENIED_PATHS: tuple[str, ...] = (
    "std::process",
    "std::thread",
    "std::fs",
    "std::net",
    "std::env",
    "std::os",
    "std::io::stdin",
    "std::io::Stdin",
    "std::path",
    "std::backtrace",
    "std::alloc::handle_alloc_error",
)
# Macros that read the build machine's files or environment at compile time.
DEFAULT_DENIED_MACROS: tuple[str, ...] = (
    "include",
    "include_str",
    "include_bytes",
    "env",
    "option_env",
)

RejectionKind = Literal["no_code", "parse_error", "signature_mismatch", "forbidden", "edit_failed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """Which paths and macros a candidate may use.

    A path is denied when its longest matching prefix among ``denied_paths`` and
    ``allowed_paths`` is a denied one (``allowed_paths=("std::thread::sleep",)`` re-admits one
    item of a denied module). Paths are written from the crate root (``std::fs``); ``core::``
    and ``alloc::`` spellings of the same items are matched too.
    """

    denied_paths: tuple[str, ...] = DEFAULT_DENIED_PATHS
    allowed_paths: tuple[str, ...] = ()
    denied_macros: tuple[str, ...] = DEFAULT_DENIED_MACROS

    @classmethod
    def create(
        cls,
        *,
        allow: tuple[str, ...] | list[str] = (),
        deny: tuple[str, ...] | list[str] = (),
    ) -> Policy:
        """The default policy plus extra denied paths and allowed paths (allow wins on ties)."""
        return cls(
            denied_paths=tuple(dict.fromkeys((*DEFAULT_DENIED_PATHS, *deny))),
            allowed_paths=tuple(dict.fromkeys(allow)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """Code that passed validation: ready to build.

    ``code`` is what gets compiled (the extracted block, with crate-level lint attributes
    removed); ``normalised`` is its token stream without layout or comments, used for cache
    keys and for noticing a model that repeats itself.
    """

    code: str
    normalised: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """Why a reply cannot be built, as facts (worded for the LLM by ``symbiont._prompts``).

    ``message`` is the validator's complete report (every parse error, every mismatched
    function, every forbidden construct), without instructions; ``error`` the first error in
    one line. ``line``/``column`` are 1-based in ``code``, the extracted code (``None`` when
    nothing was extracted), ``excerpt`` that line with a caret. ``expected``/``got`` are the
    declared and written signatures of the first mismatched function (for ``no_code``:
    every signature to define); ``construct`` names the forbidden construct or path.
    """

    kind: RejectionKind
    message: str
    error: str = ""
    code: str | None = None
    construct: str | None = None
    line: int | None = None
    column: int | None = None
    excerpt: str = ""
    expected: str | None = None
    got: str | None = None

    def failure(self) -> Failure:
        """The failure record fed back to the LLM."""
        return Failure(
            kind=self.kind,
            message=self.error,
            line=self.line,
            column=self.column,
            excerpt=self.excerpt,
            details=self.message,
            expected=self.expected,
            got=self.got,
            construct=self.construct,
        )
