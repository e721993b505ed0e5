"""Load the authors' released MATLAB weight-map network into a :class:`~jfusion.models.WeightNet`.

The file is ``cnnmodel.mat`` of Liu et al.'s IR/visible and medical CNN fusion (the network
without the hidden fc layer, distributed with VIFB). Conventions, as documented with the
file (``shared/data/reference_models/SOURCE.md``): a tap vector of length k*k is the kernel
in MATLAB column-major order, ``K[r, c] = w[r + k c]``, applied as cross-correlation (what
``nnx.Conv`` computes); conv weights are ``[in, tap, out]`` (conv1 ``[tap, out]``); the output
layer is an 8x8 "valid" correlation over the 512 concatenated channels (input 1 first) and
its bias is **not** added; class index 1 means "input 1 is the sharper / more active one".

The authors' weights are a test oracle only; they are never shipped with jfusion.
"""

from __future__ import annotations

import os

import numpy as np
from flax import nnx

from jfusion.models.focus_cnn import WeightNet, WeightNetConfig

__all__ = ["taps_to_hwio", "liu_mat_params", "load_liu_matlab"]


def taps_to_hwio(w: np.ndarray, k: int) -> np.ndarray:
    """MATLAB ``[in, tap, out]`` (or ``[tap, out]``) column-major taps -> ``(k, k, in, out)`` HWIO kernel."""
    w = np.asarray(w, np.float32)
    if w.ndim == 2:
        w = w[None]
    n_in, taps, n_out = w.shape
    if taps != k * k:
        raise ValueError(f"expected {k * k} taps, got {taps}")
    # [in, tap, out] -> [tap, in, out]; Fortran reshape of tap = r + k*c gives [r, c, in, out].
    return np.reshape(np.transpose(w, (1, 0, 2)), (k, k, n_in, n_out), order="F")


def liu_mat_params(mat: dict) -> dict[str, np.ndarray]:
    """Flat ``{path: array}`` parameters of a siamese/direct WeightNet from the loaded MAT dict."""
    conv = {}
    for i, k in ((1, "conv1"), (2, "conv2"), (3, "conv3")):
        conv[f"branch_a/{k}/kernel"] = taps_to_hwio(mat[f"weights_b1_{i}"], 3)
        conv[f"branch_a/{k}/bias"] = np.asarray(mat[f"biases_b1_{i}"], np.float32).reshape(-1)
    out = taps_to_hwio(mat["weights_output"], 8)  # (8, 8, 512, 2)
    conv["out/kernel"] = out.reshape(-1, out.shape[-1])  # row-major (y, x, c) flattening = Linear input order
    conv["out/bias"] = np.asarray(mat["biases_output"], np.float32).reshape(-1)
    return conv


def load_liu_matlab(path: str | os.PathLike) -> WeightNet:
    """The released ``cnnmodel.mat`` as a ``WeightNet(siamese, direct, 64/128/256, reference_forward=True)``.

    ``reference_forward=True`` reproduces the released forward pass (output bias not added).
    """
    from scipy.io import loadmat

    from jfusion.weights import load_params

    mat = loadmat(os.fspath(path))
    params = liu_mat_params(mat)
    widths = tuple(int(params[f"branch_a/conv{i}/kernel"].shape[-1]) for i in (1, 2, 3))
    cfg = WeightNetConfig(arch="siamese", head="direct", widths=widths, n_classes=2, reference_forward=True)
    model = WeightNet(config=cfg, rngs=nnx.Rngs(0))
    return load_params(model, params)
