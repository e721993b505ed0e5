"""One-off check of tools/convert_assets.py: outputs of every shipped learned model on fixed inputs.

Run it once with the old tree (git archive ad0571a) and once with this one on PYTHONPATH, writing two .npz
files (argv[1]); every array must be bit-identical (21 of 21 were, 2026-12-01).
"""
from __future__ import annotations

import sys

import jax.numpy as jnp
import numpy as np

from jfusion.pansharpening import learned, mshs
from jfusion.weights import load_weightnet
from jfusion.methods.cnn import focus_map

rng = np.random.default_rng(0)
out = {}
for model in ("pnn", "pnn-residual", "drpnn", "srcnn-gs", "sae"):
    for sensor, bands in (("GeoEye1", 4), ("IKONOS", 4), ("WV2", 8)):
        ms = jnp.asarray(300 + 200 * rng.random((16, 16, bands)), jnp.float32)
        pan = jnp.asarray(300 + 200 * rng.random((64, 64)), jnp.float32)
        out[f"{model}-{sensor}"] = np.asarray(getattr(learned, model.replace("-", "_"))(ms, pan, ratio=4, sensor=sensor, bit_depth=11))
for scene, (L, C, r) in {"houston": (48, 3, 4), "paris-ms": (128, 9, 3), "paris-pan": (128, 1, 3)}.items():
    hs = jnp.asarray(1000 * rng.random((12, 12, L)), jnp.float32)
    hr = jnp.asarray(200 * rng.random((12 * r, 12 * r, C)), jnp.float32)
    out[f"cnn3d-mshs-{scene}"] = np.asarray(mshs.cnn3d_mshs(hs, hr, ratio=r, scene=scene))
for name in ("focus_cnn", "focus_cnn_direct", "weight_net"):
    a = jnp.asarray(rng.random((48, 48)), jnp.float32)
    b = jnp.asarray(rng.random((48, 48)), jnp.float32)
    m = load_weightnet(name)
    out[name] = np.asarray(focus_map(m, a, b))
np.savez(sys.argv[1], **out)
print({k: v.shape for k, v in out.items()})
