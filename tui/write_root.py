"""Where the TUI may write a file the user names. In a terminal: anywhere the user can. Served in
a browser (``editlens serve``): only inside the folder the server started in, since whoever
holds the tab is not necessarily who may write elsewhere on the machine. The store, and what
editlens keeps beside it (pins, staging, checkpoints), stay where ``--db`` put them."""

from __future__ import annotations

from pathlib import Path


def refusal(path: Path, root: Path | None) -> str | None:
    """The one-line refusal to write ``path``, or None when it may be written: with a ``root``,
    the path must lead inside it once ``..`` and every symlink are followed."""
    if root is None:
        return None
    real_root = root.resolve()
    try:
        target = path.resolve()  # follows symlinks, existing or not, and ``..``
    except (OSError, RuntimeError) as error:  # a symlink loop (RuntimeError before 3.13)
        problem = f"cannot be followed ({error}), so it may lead outside {real_root}"
    else:
        if target.is_relative_to(real_root):
            return None
        leads = "" if target == path.absolute() else f" (it leads to {target})"
        problem = f"is outside {real_root}{leads}"
    return (
        f"not written: {path} {problem}; served in a browser, editlens writes only inside the"
        " folder `editlens serve` started in"
    )
