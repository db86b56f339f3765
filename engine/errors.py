"""The one error family: what a user can fix, said in one line."""

from __future__ import annotations


class EditlensError(Exception):
    """A user-facing failure; the CLI prints it as one line and exits non-zero."""


class InputError(EditlensError):
    """A file the user pointed us at cannot be read as what it claims to be."""

    def __init__(self, path: object, where: str | None, problem: str, fix: str) -> None:
        location = f"{path}:{where}" if where else f"{path}"
        super().__init__(f"{location}: {problem}; {fix}")
