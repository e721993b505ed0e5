"""JAX's persistent compilation cache for the command line (and for any caller who wants it).

Every ``jfusion`` process would otherwise compile its programs again (3-4 s per CLI call on a
CPU). :func:`enable_compilation_cache` points JAX's persistent cache at a user cache folder and
caches every program, however quickly it compiled, so a second ``jfusion fuse`` of the same
shapes reads its executables from disk instead of compiling them.

Folder: ``$JFUSION_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/jfusion/jax``, else
``~/.cache/jfusion/jax``. ``JFUSION_NO_CACHE=1`` turns it off. Programs are keyed by JAX on
the program, the shapes and dtypes, the jax/jaxlib version, the backend and the compile
options, so a cached entry is never used for a different program; the folder may be deleted
at any time. Shapes are not bucketed: another image size is another program (compiled once,
then cached too).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["compilation_cache_dir", "enable_compilation_cache"]


def compilation_cache_dir() -> Path | None:
    """The cache folder the environment asks for, or None when ``JFUSION_NO_CACHE`` is set (non-empty, not ``0``)."""
    if os.environ.get("JFUSION_NO_CACHE", "").strip() not in ("", "0"):
        return None
    explicit = os.environ.get("JFUSION_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "jfusion" / "jax"


def enable_compilation_cache(*, path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache in ``path`` (default :func:`compilation_cache_dir`).

    Sets ``jax_compilation_cache_dir`` and caches every program (minimum compile time 0 s, any
    entry size). Returns the folder, or None when the cache is disabled or the folder cannot be
    created (then nothing is changed and JAX compiles as usual).
    """
    import jax

    folder = Path(path).expanduser() if path is not None else compilation_cache_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return folder
