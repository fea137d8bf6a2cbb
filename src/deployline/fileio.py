"""Files deployline writes for the user: whole or not at all, with the user's umask.

`tempfile.mkstemp` and `mkdtemp` make private files (0600) and directories (0700); what deployline
hands to the user (init's deployline.yaml, synth's cdk.out) takes the permissions any other tool
would give it, so a team-readable checkout stays team-readable.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process's umask (reading it means setting it; it is set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same directory and a rename.

    A new file gets 0666 less the umask; a replaced file keeps its mode. An interrupted write
    leaves the old file (or none), never half of one.
    """
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish_directory(path: Path) -> None:
    """Give a directory made by `tempfile.mkdtemp` (0700) the mode a new directory would get."""
    path.chmod(0o777 & ~current_umask())
