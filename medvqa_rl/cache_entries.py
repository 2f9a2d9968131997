"""A cache entry that cannot be read (cut off, zeroed, garbled: what a node crash or a full disk leaves) is set
aside, not deleted and not silently overwritten: renamed <entry>.corrupt-<time> beside itself, kept for inspection,
so the caller rebuilds it and the log can name both paths. No project imports (the bottom floor)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path


def set_aside(entry: Path) -> Path:
    """Renames the file or folder `entry` to <entry>.corrupt-<time> and returns that path. Where it cannot be
    renamed (another process already did, or a read-only dir) it is removed if it can be, so it is rebuilt."""
    aside = entry.with_name(f"{entry.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.rename(entry, aside)
    except OSError:
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return aside
