"""Atomic file writes: a killed run leaves either the previous file or the complete new one, never half."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, content: bytes) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def remove_leftovers(folder: Path, stem: str) -> None:
    """Delete the temporary files a killed run left for `<stem>.*` in `folder` and below (SIGKILL skips the
    cleanup above). Only the partition that owns `stem` calls it, so no other run's file is touched."""
    for leftover in Path(folder).glob(f"**/.{stem}.*.partial"):
        leftover.unlink(missing_ok=True)
