"""One exception family, and the exit codes of CONTRACT §7 it maps to."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    INVALID = 2
    POLICY_DENIED = 3
    NEEDS_CONFIRMATION = 4
    EXEC_FAILED = 5
    TIMEOUT = 6
    NO_MATCH = 7
    INTERRUPTED = 130


# Result status (CONTRACT §2) -> process exit code (CONTRACT §7).
STATUS_EXIT = {
    "planned": ExitStatus.OK,
    "executed": ExitStatus.OK,
    "invalid": ExitStatus.INVALID,
    "denied": ExitStatus.POLICY_DENIED,
    "needs_confirmation": ExitStatus.NEEDS_CONFIRMATION,
    "failed": ExitStatus.EXEC_FAILED,
    "timeout": ExitStatus.TIMEOUT,
    "no_match": ExitStatus.NO_MATCH,
    "interrupted": ExitStatus.INTERRUPTED,
}


class RagK8sError(Exception):
    """Base of every error rag-k8s raises on purpose; the message says what to do next."""

    exit_status: ExitStatus = ExitStatus.ERROR
    status: str | None = None  # the result status this error becomes, when it has one


class InvalidRequest(RagK8sError):
    """The request is malformed; `field` names the offending field (dotted path)."""

    exit_status = ExitStatus.INVALID
    status = "invalid"

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


class NoMatch(RagK8sError):
    """No command card fits the request."""

    exit_status = ExitStatus.NO_MATCH
    status = "no_match"


class RefusedAction(RagK8sError):
    """The request asks for something rag-k8s never runs (CONTRACT §3: exec, edit, cp, ...).

    Not a policy decision that a file could change: the result is `denied`, its reason names the
    verb, and `suggestion` is the kubectl command for the user to run themselves, when one can be
    written. `argv` is the command the words asked for, when it could be read (shown, never run).
    """

    exit_status = ExitStatus.POLICY_DENIED
    status = "denied"

    def __init__(self, verb: str, reason: str, *, suggestion: str | None = None,
                 argv: list[str] | None = None) -> None:
        self.verb = verb
        self.reason = reason
        self.suggestion = suggestion
        self.argv = argv
        super().__init__(reason)


class UndoRefused(RagK8sError):
    """An undo that must not run: the log does not verify, the operation recorded no inverse, or
    the object changed since (the message names the field that moved)."""

    exit_status = ExitStatus.POLICY_DENIED
    status = "denied"


class ConfigError(RagK8sError):
    """A configuration file or environment variable is wrong."""


class CardError(RagK8sError):
    """A command card is malformed; the message names the file and the field."""

    def __init__(self, path: str, field: str, problem: str) -> None:
        self.path = path
        self.field = field
        super().__init__(f"{path}: {field}: {problem}" if field else f"{path}: {problem}")


class PolicyError(RagK8sError):
    """An org policy file is missing or malformed: nothing may run (fail closed)."""

    exit_status = ExitStatus.POLICY_DENIED
    status = "denied"


class ArgvError(RagK8sError):
    """A kubectl argv cannot be analysed with certainty; the validator refuses it (fail closed)."""

    exit_status = ExitStatus.POLICY_DENIED
    status = "denied"


class IndexError_(RagK8sError):  # noqa: N801 - avoid shadowing the builtin IndexError
    """The retrieval index is missing, unreadable or built with another model."""


class PlannerError(RagK8sError):
    """The planner could not produce a valid plan."""


class ModelNotFound(PlannerError):
    """The MLX model path or hub id cannot be loaded on this machine."""


class ExecutorError(RagK8sError):
    """kubectl could not be started at all."""
