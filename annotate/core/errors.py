"""Errors raised for bad input files: one line that names the file, the line and the field."""

from __future__ import annotations


class InputFileError(ValueError):
    """A bad line in an input file. The whole file is rejected and the database is left unchanged."""

    def __init__(self, path: str, line: int | None, field: str | None, message: str) -> None:
        self.path, self.line, self.field, self.message = str(path), line, field, message
        where = self.path if line is None else f"{self.path}, line {line}"
        if field:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")


class RuleViolation(ValueError):
    """A submission whose answer and tags break the study's consistency rules; nothing was saved."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__(" ".join(messages))


class AccessDenied(PermissionError):
    """Wrong name or access code, or an annotator acting on what is not theirs."""


class TooManyAttempts(PermissionError):
    """Too many failed sign-ins in a short time; `wait_seconds` says how long until the next try."""

    def __init__(self, wait_seconds: float) -> None:
        self.wait_seconds = wait_seconds
        super().__init__(f"Too many failed attempts. Try again in {wait_seconds:.0f} seconds.")
