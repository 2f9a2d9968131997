"""Content digests with no project imports (the bottom floor): the package source's digest that provenance
records as `code` and the dataset cache keys on, and a short digest of any JSON-able value."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent  # medvqa_rl/


def json_digest(value) -> str:
    """16 hex digits of SHA-256 over value's JSON (keys sorted; what JSON cannot hold, as str)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def source_digest(*relative: str) -> str:
    """Digest of the package's .py files (all of them, or those under the given paths relative to the package)."""
    roots = [PACKAGE_DIR / r for r in relative] or [PACKAGE_DIR]
    files = sorted({p for root in roots for p in ([root] if root.is_file() else root.rglob("*.py"))})
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
