"""Errors the user sees as one clear line."""

from __future__ import annotations


class WorkbenchError(Exception):
    """A problem the user can fix; str(err) is a single line with the fix."""

    exit_code = 2


class BadInput(WorkbenchError):
    """The user's input is wrong (bad CIDR, unknown container, ...)."""

    exit_code = 2


class NotReady(WorkbenchError):
    """A precondition is not met (not root, daemon down, lab not up)."""

    exit_code = 3


class StepFailed(WorkbenchError):
    """A scenario step failed; the plan rolled back what it applied."""

    exit_code = 4
