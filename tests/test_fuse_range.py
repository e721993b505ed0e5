"""fuse returns images in [0, 1] for every method (the one output rule: clip at the end unless clip=False)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jfusion
from jfusion.io import read_image
from jfusion.methods.registry import REGISTRY

from conftest import data_path

# Small crops keep the slow methods (CSR's ADMM, SR's OMP, the CNNs) fast; 64 px is the least
# cnn-focus-multiscale takes (its largest patch). This crop has saturated highlights next to dark
# areas, where the sparse reconstructions overshoot (measured with clip=False: sr [-0.044, 1.045],
# csr [-0.089, 1.048]).
CROP = (slice(192, 256), slice(448, 512))
FAST = {"csr": {"max_iter": 60}, "csr-transform": {"max_iter": 40}, "sr": {"stride": 2},
        "deep-hdr": {"flow_iterations": 10, "flow_warps": 1}}


@pytest.fixture(scope="module")
def real_pair():
    a = read_image(data_path("lytro", "lytro-04-A.jpg"))[CROP]
    b = read_image(data_path("lytro", "lytro-04-B.jpg"))[CROP]
    return [a, b]


@pytest.fixture(scope="module")
def real_exposures():
    """Three real exposures (a 64 x 64 RGB crop of the MEF 'chair' sequence, about 2 EV apart) for the 3-source methods."""
    return [read_image(data_path("mef", "ifcnn_sequences", "chair", f"chairs{i}.jpg"))[96:160, 140:204] for i in (2, 3, 4)]


@pytest.mark.parametrize("method", REGISTRY.names())
def test_fuse_output_is_in_unit_range_and_evaluable(request, method):

    info = REGISTRY.get(method)
    if not info.has_weights:
        pytest.skip(f"{method}: no shipped weights ({info.weights}); tests/test_hdr_deep.py checks its range with a test asset")
    sources = request.getfixturevalue("real_exposures" if info.min_sources == 3 else "real_pair")
    fused = np.asarray(jfusion.fuse(sources, method=method, **FAST.get(method, {})))
    if info.scale_option:  # fusion with super-resolution: the fused image is `scale` times the sources' size
        scale = next(o.default for o in info.options if o.name == info.scale_option)
        h, w = sources[0].shape[:2]
        assert fused.shape == (scale * h, scale * w, *sources[0].shape[2:])
        sources = [np.clip(np.asarray(jax.image.resize(s, fused.shape, method="bicubic")), 0.0, 1.0) for s in sources]
    else:
        assert fused.shape == sources[0].shape
    assert np.all(np.isfinite(fused))
    assert fused.min() >= 0.0 and fused.max() <= 1.0, (method, float(fused.min()), float(fused.max()))
    # the symptom of the issue: evaluate refused fuse's own output
    scores = jfusion.evaluate(sources, fused, metrics=["psnr", "ssim"])
    assert all(np.isfinite(v) for v in scores.values())


def test_clip_false_keeps_the_raw_result_of_a_method_without_its_own_clip(real_pair):
    raw = np.asarray(jfusion.fuse(real_pair, method="sr", clip=False, stride=2))
    clipped = np.asarray(jfusion.fuse(real_pair, method="sr", stride=2))
    assert raw.min() < 0.0 or raw.max() > 1.0  # SR's reconstruction overshoots on this crop
    np.testing.assert_array_equal(clipped, np.clip(raw, 0.0, 1.0))
