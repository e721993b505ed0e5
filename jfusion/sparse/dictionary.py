"""Dictionaries: the shipped convolutional dictionaries, file loading and the overcomplete DCT.

Shipped dictionaries are assets (:mod:`jfusion.assets`): ``jfusion/sparse/dictionaries/<name>.npz``
(the array under key ``dictionary``) with its manifest ``<name>.json`` (recipe, seed, steps, final
objective, sha256), written by ``jfusion train dictionary``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jfusion import assets
from jfusion.weights import cached_loader

__all__ = ["DICTIONARY_DIR", "load_dictionary", "dictionary_manifest", "shipped_dictionaries", "dct_dictionary"]

DICTIONARY_DIR = Path(__file__).resolve().parent / "dictionaries"
ARRAY = "dictionary"  # the key of the array in a dictionary asset


def shipped_dictionaries() -> list[str]:
    """Names of the dictionaries shipped with the package."""
    return [p.stem for p in assets.find_assets(DICTIONARY_DIR)]


@cached_loader(maxsize=16, asset=True)
def _read_shipped(path: str) -> np.ndarray:
    return assets.read_asset(path).arrays[ARRAY]


def load_dictionary(*, name_or_path: str = "csr32") -> np.ndarray:
    """A read-only convolutional dictionary ``(h, w, M)`` (float32) by shipped name or file path.

    Args:
        name_or_path: a shipped name (:func:`shipped_dictionaries`, an asset of
            :mod:`jfusion.assets`, sha256 checked), or a ``.npy`` file, or a MATLAB ``.mat`` file
            holding one array (key ``D`` preferred), e.g. the CSR authors' ``dict.mat``.

    Raises:
        ValueError: unknown name, unreadable file or not a 3-D array
            (:class:`jfusion.assets.AssetError` for a shipped file that fails its checksum).
    """
    p = Path(name_or_path)
    shipped = DICTIONARY_DIR / f"{name_or_path}.npz"
    if name_or_path in shipped_dictionaries():
        d = _read_shipped(shipped)
    elif p.suffix == ".npy" and p.exists():
        d = np.load(p)
    elif p.suffix == ".mat" and p.exists():
        import scipy.io

        mat = {k: v for k, v in scipy.io.loadmat(p).items() if not k.startswith("__")}
        d = mat["D"] if "D" in mat else next(iter(mat.values()))
    else:
        raise ValueError(
            f"unknown dictionary {name_or_path!r}: give a shipped name ({', '.join(shipped_dictionaries()) or 'none'}) "
            "or a .npy/.mat file"
        )
    if d.ndim != 3:
        raise ValueError(f"dictionary {name_or_path!r} must be (h, w, M), got shape {d.shape}")
    if d.dtype != np.float32 or d.flags.writeable:
        d = np.array(d, dtype=np.float32)
        d.setflags(write=False)
    return d


def dictionary_manifest(*, name: str = "csr32") -> dict:
    """The manifest (model, config, data, command, steps, seed, scores, ..., sha256) of a shipped dictionary."""
    return assets.read_manifest(DICTIONARY_DIR / name)


def dct_dictionary(*, patch: int = 8, atoms: int = 256) -> np.ndarray:
    """Overcomplete 2-D DCT dictionary ``(patch*patch, atoms)``, unit-norm columns (Yang & Li 2010).

    The separable construction of Elad & Aharon (K-SVD denoising): a 1-D overcomplete DCT of
    ``k = ceil(sqrt(atoms))`` atoms (mean removed from all but the DC atom, normalised), the
    Kronecker product of two of them; ``atoms`` must be a perfect square.
    """
    k = int(round(np.sqrt(atoms)))
    if k * k != atoms:
        raise ValueError(f"atoms must be a perfect square, got {atoms}")
    n = np.arange(patch)[:, None]
    d1 = np.cos(n * np.arange(k)[None, :] * np.pi / k)
    d1[:, 1:] -= d1[:, 1:].mean(axis=0)
    d1 /= np.linalg.norm(d1, axis=0)
    d = np.kron(d1, d1)
    return (d / np.linalg.norm(d, axis=0)).astype(np.float32)
