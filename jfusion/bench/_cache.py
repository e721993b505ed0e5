"""The benchmark's cache under ``<out>/cache``: keys, atomic JSON entries.

Every cached result is keyed by what determines it: the item's input bytes (its fingerprint),
the method (registered name + options, or the external file's bytes), the metric settings and
the jfusion version. An entry whose key differs (inputs changed, options changed, new jfusion)
is recomputed; ``force`` recomputes all. Files are written with :func:`jfusion.io.atomic_output`,
so a killed run leaves complete entries or none.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from jfusion.io import write_text

__all__ = ["digest", "safe_name", "read_entry", "write_entry"]


def digest(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable ``parts``."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """A short hash of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def safe_name(name: str) -> str:
    """``name`` usable as a file name (path separators and odd characters replaced)."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name) or "_"


def read_entry(path: Path, key: str) -> dict[str, Any] | None:
    """The cached ``value`` at ``path`` when its key is ``key``; None when absent, stale or unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data.get("value") if isinstance(data, dict) and data.get("key") == key else None


def write_entry(path: Path, key: str, value: Any) -> None:
    """Write ``{"key", "value"}`` to ``path`` atomically (replacing a stale entry: the cache is the bench's own)."""
    write_text(path, json.dumps({"key": key, "value": value}, sort_keys=True, indent=1), overwrite=True)
