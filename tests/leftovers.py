"""What an archive has left behind: its temporary files, named or unnamed."""

from __future__ import annotations

import os
from pathlib import Path

from netdicom.archive.writer import TEMP_DIR


def temp_files(root: Path, pid: int | str = "self") -> list[str]:
    """Named temporary files in `root`'s temporary folder, and the unnamed (O_TMPFILE) ones
    process `pid` holds open there: /proc shows those as `<folder>/#<inode> (deleted)`."""
    temp = root / TEMP_DIR
    if not temp.exists():
        return []
    found = [str(p) for p in temp.iterdir()]
    prefix = f"{os.path.realpath(temp)}/#"
    fds = Path(f"/proc/{pid}/fd")
    if fds.is_dir():
        for fd in fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue  # closed meanwhile
            if target.startswith(prefix):
                found.append(target)
    return found
