"""Errors a user can cause, each carrying one clear sentence that says what to do."""

from __future__ import annotations


class QAError(Exception):
    """A problem the user can fix; str(exc) is the one sentence to show them."""


class DocumentError(QAError):
    """A document that cannot be read; the rest of the corpus is still processed."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class IndexProblem(QAError):
    """A missing, corrupt or mismatched index; the message names the command that fixes it."""
