"""Every file editlens writes goes through here: never onto a store, never half a file, never
over an existing file unless asked.

A store is recognised by its bytes (DuckDB's ``DUCK`` magic), not only by the ``--db`` the
command was given, so an export cannot destroy a different store, a staging store or a
checkpoint's staging file either; a ``.wal`` beside a store is refused too, because DuckDB
would replay it into the store at the next open. Files are written to a hidden temporary file
in the target's folder and renamed into place, so an interrupted write leaves the old file (or
nothing) behind, never a truncated one; only a ``kill -9`` can leave the temporary file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import EditlensError

_DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file
_WAL_SUFFIX = ".wal"


def is_store_file(path: Path) -> bool:
    """Whether ``path`` is a DuckDB database (any store, staging store or checkpoint staging)."""
    try:
        with path.open("rb") as file:
            return file.read(12)[8:12] == _DUCKDB_MAGIC
    except OSError:
        return False


def check_output(path: Path, *, force: bool = False, protected: Iterable[Path] = ()) -> Path:
    """Refuse, in one line, a target that is a folder, sits in a missing folder, is or belongs to
    a store, or exists (without ``force``); returns the path to write. Call it before the work,
    so a refusal costs nothing."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise EditlensError(f"{path}: is a folder; name a file inside it")
    folder = target.parent
    if not folder.exists():
        raise EditlensError(f"{path}: folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise EditlensError(f"{path}: {folder} is not a folder; choose another path")
    if _is_protected(target, protected):
        raise EditlensError(
            f"{path}: is an editlens store or one of its files; writing there would destroy it, "
            "choose another name"
        )
    if target.exists() or target.is_symlink():
        if not target.is_file():
            raise EditlensError(f"{path}: is not a regular file; choose another path")
        if not force:
            raise EditlensError(f"{path}: already exists; pass --force to replace it")
    if not os.access(folder, os.W_OK):
        raise EditlensError(f"{path}: cannot write into folder {folder}; choose another path")
    return target


def _is_protected(target: Path, protected: Iterable[Path]) -> bool:
    """The target is a store, a store's WAL, or one of the paths the caller named."""
    if is_store_file(target):
        return True
    if target.name.endswith(_WAL_SUFFIX) and is_store_file(
        target.with_name(target.name.removesuffix(_WAL_SUFFIX))
    ):
        return True
    resolved = target.resolve()
    for path in protected:
        path = Path(path).expanduser()
        for guarded in (path, path.with_name(path.name + _WAL_SUFFIX)):
            if resolved == guarded.resolve():
                return True
            if target.exists() and guarded.exists() and os.path.samefile(target, guarded):
                return True
    return False


@contextmanager
def output_file(
    path: Path, *, force: bool = False, protected: Iterable[Path] = ()
) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it replaces ``path`` in one
    rename, on any failure (Ctrl-C included) it is removed and ``path`` is left as it was."""
    target = check_output(path, force=force, protected=protected)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        yield temporary
        if not temporary.exists():  # the writer wrote nothing: an empty file, as asked
            temporary.touch()
        if not force and target.exists():  # appeared while we wrote
            raise EditlensError(f"{path}: already exists; pass --force to replace it")
        os.replace(temporary, target)
    except OSError as error:
        raise EditlensError(
            f"{path}: cannot be written ({error.strerror or error}); nothing was written"
        ) from None
    finally:
        temporary.unlink(missing_ok=True)


def write_text(
    path: Path, text: str, *, force: bool = False, protected: Iterable[Path] = ()
) -> None:
    """Write a whole text file (an SVG, a report page) through ``output_file``."""
    with output_file(path, force=force, protected=protected) as temporary:
        temporary.write_text(text, encoding="utf-8")
