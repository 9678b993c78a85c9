"""Errors for bad dataset and split files: one line that names the file, the line and the field.

Generation is its own layer (it needs nothing from the annotation app or the analysis), so it keeps its
own copy of this small class instead of importing the app's.
"""

from __future__ import annotations


class InputFileError(ValueError):
    """A bad line in an input file; nothing is written."""

    def __init__(self, path: str, line: int | None, field: str | None, message: str) -> None:
        self.path, self.line, self.field, self.message = str(path), line, field, message
        where = self.path if line is None else f"{self.path}, line {line}"
        if field:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")
