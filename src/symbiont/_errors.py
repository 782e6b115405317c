"""The exception tree.

A failed *candidate* (parse error, wrong signature, compile error, panic during a check) is data:
a record fed back to the LLM. Exceptions are for a broken *setup* or for the caller of a native
function. Every exception symbiont raises derives from :class:`SymbiontError`::

    SymbiontError
     +-- DeclarationError     the declared Rust source cannot be used (also ValueError)
     +-- ConfigError          an unknown or invalid option (also ValueError)
     +-- ToolchainError       rustc is missing or cannot build a trivial library
     +-- BuildError           a build the setup depends on failed (revision 0, the trampoline)
     +-- RevisionError        an unknown or unloaded revision (also LookupError)
     +-- AgentError           the LLM could not be reached or answered unusably
     |    +-- TransientAgentError   retried by the loop: connection, timeout, 408/425/429/5xx
     |    +-- ContextOverflowError  the conversation no longer fits: the loop restarts it
     +-- CandidateError       hand-written code given to Runtime.register was rejected
     +-- EvolveError          an evolution lane ended without a revision (carries its trace)
     +-- PanicError           native code panicked (also RuntimeError)
     +-- CrashError           an isolated evaluation process died (signal, exit, out of memory)
     +-- TimeoutError         a stage or a native call passed its deadline
     |                        (also builtins.TimeoutError)
     +-- StoreError           the run store cannot be used (not a store, newer schema, no run)
          +-- ResumeError     a run cannot be resumed as asked (changed declarations, evaluator)

Third-party exceptions are translated at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Annotations only. EvolveError carries the lane's trace, a value of the evolve layer:
    # the one import above this module's layer, allowed by tests/test_layers.py.
    from symbiont._evolve._trace import AttemptTrace, Trace
    from symbiont._failures import Failure


class SymbiontError(Exception):
    """Base class of every exception symbiont raises."""


class DeclarationError(SymbiontError, ValueError):
    """The declared Rust source cannot be used; the message names the item and the problem."""


class ConfigError(SymbiontError, ValueError):
    """An unknown or invalid option; the message lists the valid ones."""


class ToolchainError(SymbiontError):
    """rustc is missing or broken; the message names the fix."""


class BuildError(SymbiontError):
    """A build the setup depends on failed. ``diagnostics`` holds the compiler's errors."""

    def __init__(self, message: str, *, diagnostics: str = "") -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


class RevisionError(SymbiontError, LookupError):
    """An unknown revision number, or a revision that can no longer be loaded."""


class AgentError(SymbiontError):
    """The LLM could not be reached or answered in a way the loop cannot use.

    ``status`` is the HTTP status when there was one. ``fatal`` says that asking again cannot
    help (a bad key, an unknown model, a malformed request): loops around ``evolve`` should
    stop at once. The subclasses below are never fatal.
    """

    def __init__(self, message: str, *, status: int | None = None, fatal: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.fatal = fatal


class TransientAgentError(AgentError):
    """A failure worth retrying unchanged: connection, timeout, 408/425/429/5xx.

    ``retry_after`` is the server's requested delay in seconds, when it sent one.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status, fatal=False)
        self.retry_after = retry_after


class ContextOverflowError(AgentError):
    """The conversation is longer than the model's context window."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status, fatal=False)


class CandidateError(SymbiontError, ValueError):
    """Code handed to ``Runtime.register`` was rejected; ``failure`` says why (the same record
    an LLM would have received as feedback)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(f"{failure.summary}\n{failure.feedback}")
        self.failure = failure


class EvolveError(SymbiontError):
    """An evolution lane ended without registering a revision.

    ``trace`` holds every attempt of the lane; ``last_failure`` is the last candidate failure
    fed back to the LLM (or ``None`` when the lane ended on an agent error, which is then the
    ``__cause__``). ``fatal`` is True when that cause means no later attempt can succeed
    (see :attr:`AgentError.fatal`; an agent that raised something else is broken too): loops
    that call ``evolve`` round after round should stop on it instead of starting a new round.
    """

    def __init__(
        self,
        message: str,
        *,
        trace: Trace,
        last_failure: Failure | None = None,
        lane: int = 0,
    ) -> None:
        super().__init__(message)
        self.trace = trace
        self.last_failure = last_failure
        self.lane = lane

    @property
    def attempts(self) -> tuple[AttemptTrace, ...]:
        return self.trace.attempts

    @property
    def fatal(self) -> bool:
        cause = self.__cause__
        if cause is None:
            return False
        if isinstance(cause, AgentError):
            return cause.fatal
        return isinstance(cause, Exception)


class PanicError(SymbiontError, RuntimeError):
    """A native function panicked. The host process is intact.

    ``message`` is the panic message, ``file``/``line``/``column`` its location (``file`` is
    ``"candidate.rs"`` for code the LLM wrote, lines counted in that code), ``function`` the
    declared function that was called and ``revision`` the revision that ran.
    """

    def __init__(
        self,
        message: str,
        *,
        function: str,
        revision: int | None,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        where = f" at {file}:{line}:{column}" if file else ""
        rev = f" (revision {revision})" if revision is not None else ""
        super().__init__(f"{function}{rev} panicked{where}: {message}")
        self.message = message
        self.function = function
        self.revision = revision
        self.file = file
        self.line = line
        self.column = column


class CrashError(SymbiontError):
    """An isolated evaluation worker died: ``signal`` (e.g. ``"SIGABRT"``) or ``exit_code``,
    and the tail of what it printed to stderr. Carried by the ``crash`` failure record."""

    def __init__(
        self, message: str, *, signal: str | None, exit_code: int | None, stderr: str = ""
    ) -> None:
        super().__init__(message)
        self.signal = signal
        self.exit_code = exit_code
        self.stderr = stderr

    def __reduce__(self) -> tuple[Any, ...]:
        return (_crash, (str(self), self.signal, self.exit_code, self.stderr))


def _crash(message: str, signal: str | None, exit_code: int | None, stderr: str) -> CrashError:
    return CrashError(message, signal=signal, exit_code=exit_code, stderr=stderr)


class TimeoutError(SymbiontError, builtins.TimeoutError):
    """A stage (LLM request, build, check) or a native call passed its deadline."""


class StoreError(SymbiontError):
    """The run store cannot be used: not a store, written by a newer symbiont, no such run."""


class ResumeError(StoreError):
    """A run cannot be resumed as asked: its declarations or evaluator changed (the message
    names what changed; ``force=True`` resumes anyway), or it does not exist."""
