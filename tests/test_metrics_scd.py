"""SCD and the IR/VIS papers' summed VIF against their reference formulas on real infrared/visible pairs."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jfusion as jf
from jfusion import metrics as M
from conftest import data_path

PAIRS = ("Kaptein_1123", "Marne_04", "APC_4")


def _corr2(x: np.ndarray, y: np.ndarray) -> float:
    # MATLAB corr2, float64: sum((x-mx)(y-my)) / sqrt(sum((x-mx)^2) sum((y-my)^2)).
    xc, yc = x - x.mean(), y - y.mean()
    return float((xc * yc).sum() / np.sqrt((xc * xc).sum() * (yc * yc).sum()))


def _pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    folder = data_path("tno", "original")
    ir = np.asarray(jf.read_image(folder / f"{name}_IR.png"), np.float64)
    vi = np.asarray(jf.read_image(folder / f"{name}_VIS.png"), np.float64)
    if ir.ndim == 3:
        ir = ir.mean(-1)
    if vi.ndim == 3:
        vi = vi.mean(-1)
    h, w = min(ir.shape[0], vi.shape[0], 256), min(ir.shape[1], vi.shape[1], 256)
    return ir[:h, :w], vi[:h, :w]


@pytest.mark.parametrize("name", PAIRS)
def test_scd_matches_reference_formula(name):
    # Reference: Aslantas & Bendes' analysis_SCD.m, r = corr2(F - B, A) + corr2(F - A, B), in float64.
    a, b = _pair(name)
    f = np.asarray(jf.fuse([a.astype(np.float32), b.astype(np.float32)], method="laplacian"), np.float64)
    ref = _corr2(f - b, a) + _corr2(f - a, b)
    with jax.enable_x64(True):
        got64 = float(M.scd(np.stack([a, b]), f))
    assert got64 == pytest.approx(ref, rel=1e-12)
    got = float(M.scd(np.stack([a, b]), f))  # float32, the default
    assert got == pytest.approx(ref, abs=2e-5)
    # Through evaluate, by name, on the two sources.
    assert float(jf.evaluate([a, b], f, metrics=["scd"])["scd"]) == pytest.approx(ref, abs=2e-5)


def test_scd_properties(rng):
    a, b = rng.random((2, 48, 40))
    # The average of the sources: D_1 = (A - B)/2 is anti-correlated with B's share; SCD in [-2, 2].
    v = float(M.scd(np.stack([a, b]), (a + b) / 2))
    assert -2.0 <= v <= 2.0
    # F = A + B - mean makes D_1 = A - const and D_2 = B - const: correlation 1 each, SCD = 2.
    assert float(M.scd(np.stack([a, b]), (a + b) / 2 + (a + b) / 2 - 0.5)) == pytest.approx(2.0, abs=1e-5)
    # A flat difference carries no correlation: finite, not NaN.
    assert np.isfinite(float(M.scd(np.stack([a, a]), a)))
    # Symmetric in the sources.
    f = rng.random((48, 40))
    assert float(M.scd(np.stack([a, b]), f)) == pytest.approx(float(M.scd(np.stack([b, a]), f)), abs=1e-6)


@pytest.mark.parametrize("name", PAIRS[:2])
def test_vifp_sum_convention_is_the_papers_vif(name):
    # Reference: sewar's vifp (the pixel-domain VIF of Tang's scripts, sigma_nsq = 2) of each source, summed.
    sewar = pytest.importorskip("sewar")
    a, b = _pair(name)
    f = np.asarray(jf.fuse([a.astype(np.float32), b.astype(np.float32)], method="gff"), np.float64)
    a8, b8, f8 = (np.round(x * 255.0) for x in (a, b, f))
    ref = sewar.full_ref.vifp(a8, f8) + sewar.full_ref.vifp(b8, f8)
    with jax.enable_x64(True):  # float64 as sewar computes, at the tolerance of the existing vifp test
        got = float(M.vifp(np.stack([a8, b8]), f8, data_range=255.0, convention="sum"))
        mean = float(M.vifp(np.stack([a8, b8]), f8, data_range=255.0))
    assert got == pytest.approx(ref, rel=1e-10)
    assert mean == pytest.approx(ref / 2, rel=1e-10)
