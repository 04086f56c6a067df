"""Errors a person can act on, kept apart from bugs.

Like qutebrowser's KnownError: callers catch ``DomainError`` and show its message as it is;
anything else is a bug and goes to the crash handler with a traceback.
"""
from __future__ import annotations


class DomainError(Exception):
    """A refusal with a message a clerk can act on ("RMA R-000123 is already closed ...")."""

    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    code = "not_found"


class InvalidInput(DomainError):
    code = "invalid_input"


class StateConflict(DomainError):
    """The thing exists but is in a state that does not allow the step (closed, already decided)."""

    code = "state_conflict"


class PolicyViolation(DomainError):
    code = "policy_violation"


class NotAllowed(DomainError):
    """The signed-in user's role does not allow this."""

    code = "not_allowed"


class EnvironmentProblem(DomainError):
    """Disk, database file or server unavailable: not the clerk's input, but still actionable."""

    code = "environment"


def first_line(exc: BaseException) -> str:
    """What went wrong in one line: the first non-blank line of what the driver, server or device
    said (a database driver's own error when a wrapper carries it as ``orig``), else the error's
    type. The one place that cuts a traceback-length message down to what a person reads."""
    source = getattr(exc, "orig", None) or exc
    for line in str(source).splitlines():
        if line.strip():
            return line.strip()
    return type(source).__name__
