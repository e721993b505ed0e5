"""Target-adaptive fine-tuning (PNN+, adapt=True) and the SAE's named detail injection."""

from __future__ import annotations

import os
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import data_path

import jfusion
from jfusion.errors import FusionInputError
from jfusion.pansharpening import adapt, learned, wald


def _crop():
    from jfusion.pansharpening.io import read_scene

    path = data_path("pansharpening", "imgIK.mat")
    if not path.exists():
        pytest.skip(f"{path} not found (shared data)")
    s = read_scene(path)
    ms, pan = np.asarray(s.ms[:32, :32], np.float32), np.asarray(s.pan[:128, :128], np.float32)
    return ms, pan, s


def _network(name, ms, s):
    split, _ = learned.load_params(name, s.sensor, ms.shape[-1])
    spec = learned.SPECS[name]
    from flax import nnx

    margin = getattr(nnx.merge(*split), "margin", 0)

    def inputs(m, p):
        return learned.network_inputs(m, p, ratio=4, bit_depth=s.bit_depth, indices=spec.indices)

    return split, margin, inputs


@pytest.mark.parametrize("name", ["pnn-residual"])
def test_fine_tune_is_pure_lowers_its_loss_and_matches_the_chunked_form(name):
    ms, pan, s = _crop()
    if not (learned.WEIGHTS_DIR / f"{name}-IKONOS.npz").exists():
        pytest.skip(f"{name}: no shipped IKONOS weights")
    split, margin, inputs = _network(name, ms, s)
    x, y = adapt.adaptation_pair(jnp.asarray(ms), jnp.asarray(pan), ratio=4, sensor=s.sensor, inputs=inputs)
    y = y / 2.0**s.bit_depth
    assert x.shape[:2] == y.shape[:2] == (32, 32)
    loss = adapt._objective(split[0], split[2], x, y, margin)
    f = jax.jit(lambda p: adapt.fine_tune((split[0], p, split[2]), x, y, steps=20, lr=1e-4, margin=margin))
    tuned = f(split[1])
    again = f(split[1])
    for a, b in zip(jax.tree.leaves(tuned), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)  # deterministic
    assert float(loss(tuned)) < float(loss(split[1]))
    chunked, done = adapt.adapt_eagerly(split, x, y, steps=20, lr=1e-4, margin=margin, chunk=7, progress=False)
    assert done == 20
    for a, b in zip(jax.tree.leaves(tuned), jax.tree.leaves(chunked)):
        np.testing.assert_array_equal(a, b)  # the same compiled loop body (adapt._steps): bitwise
    # a time budget stops between chunks
    _, stopped = adapt.adapt_eagerly(split, x, y, steps=1000, lr=1e-4, margin=margin, chunk=5, seconds=1e-9, progress=False)
    assert stopped == 5


def test_pansharpen_adapt_option_and_refusals():
    ms, pan, s = _crop()
    if not (learned.WEIGHTS_DIR / "pnn-IKONOS.npz").exists():
        pytest.skip("pnn: no shipped IKONOS weights")
    plain = np.asarray(jfusion.pansharpen(ms, pan, method="pnn", sensor=s.sensor, bit_depth=s.bit_depth))
    tuned = np.asarray(jfusion.pansharpen(ms, pan, method="pnn", sensor=s.sensor, bit_depth=s.bit_depth, adapt=True, adapt_steps=10))
    assert tuned.shape == plain.shape and np.all(np.isfinite(tuned)) and not np.array_equal(tuned, plain)
    with pytest.raises(FusionInputError, match="adapt_steps"):
        jfusion.pansharpen(ms, pan, method="pnn", sensor=s.sensor, bit_depth=s.bit_depth, adapt=True, adapt_steps=0)
    with pytest.raises(FusionInputError, match="adapt"):
        jfusion.pansharpen(ms, pan, method="gsa", adapt=True)


def test_cli_adapt(tmp_path):
    from typer.testing import CliRunner

    import jfusion.cli
    import tifffile

    ms, pan, s = _crop()
    if not (learned.WEIGHTS_DIR / "pnn-IKONOS.npz").exists():
        pytest.skip("pnn: no shipped IKONOS weights")
    tifffile.imwrite(tmp_path / "ms.tif", ms.astype(np.uint16), photometric="minisblack", planarconfig="contig")
    tifffile.imwrite(tmp_path / "pan.tif", pan.astype(np.uint16), photometric="minisblack")
    args = ["pansharpen", "--ms", str(tmp_path / "ms.tif"), "--pan", str(tmp_path / "pan.tif"), "--sensor", "IKONOS",
            "--bit-depth", "11", "-m", "pnn"]
    r = CliRunner().invoke(jfusion.cli.app, args + ["-o", str(tmp_path / "a.tif"), "--adapt", "--adapt-steps", "10"])
    assert r.exit_code == 0, r.output
    assert "adapted pnn to this pair: 10 steps" in r.output and (tmp_path / "a.tif").exists()
    bad = CliRunner().invoke(jfusion.cli.app, args[:-1] + ["gsa", "-o", str(tmp_path / "b.tif"), "--adapt"])
    assert bad.exit_code != 0 and "--adapt" in bad.output and not (tmp_path / "b.tif").exists()


def test_sae_is_the_restoration_and_injection_is_an_option():
    ms, pan, s = _crop()
    if not (learned.WEIGHTS_DIR / "sae-IKONOS.npz").exists():
        pytest.skip("sae: no shipped IKONOS weights")
    kw = dict(method="sae", sensor=s.sensor, bit_depth=s.bit_depth)
    own = np.asarray(jfusion.pansharpen(ms, pan, **kw))
    injected = np.asarray(jfusion.pansharpen(ms, pan, inject=True, **kw))
    model, meta = learned.load_weights("sae", s.sensor, 1)
    up = wald.upsample_ms(jnp.asarray(ms), 4) / 2.0**s.bit_depth
    bands = [learned.sae_restore(model, up[..., b], patch=int(meta["patch"]), stride=2) for b in range(ms.shape[-1])]
    np.testing.assert_allclose(own, np.stack(bands, -1) * 2.0**s.bit_depth, rtol=1e-5, atol=1e-3)
    assert not np.allclose(own, injected)
    # the injection adds the PAN's high frequencies: the injected result correlates better with the PAN's detail
    hp = pan - np.asarray(wald.interp23tap(wald.decimate(jnp.asarray(pan), 4), 4))
    corr = [np.corrcoef(hp.ravel(), (x.mean(-1) - x.mean(-1).mean()).ravel())[0, 1] for x in (own, injected)]
    assert corr[1] > corr[0]


# ----------------------------------------------------------------------------- adapt="full-resolution" (Z-PNN)
def _np_window_sum(x, n):
    """Sums over n x n windows, rows/cols i - (n/2 - 1) .. i + n/2, zero outside (x: (B, H, W), float64)."""
    from numpy.lib.stride_tricks import sliding_window_view

    w = n // 2
    xp = np.pad(x, ((0, 0), (w - 1, w), (w - 1, w)))
    return sliding_window_view(xp, (n, n), axis=(1, 2)).sum(axis=(-1, -2))


def _np_xcorr(a, b, w):
    """Z-PNN's xcorr (authors' cross_correlation.py, written out in NumPy float64): a (H, W, B), b (H, W)."""
    a = np.moveaxis(np.asarray(a, np.float64), -1, 0)
    b = np.asarray(b, np.float64)[None]
    n = 2 * w
    a = a - _np_window_sum(a, n) / n**2
    b = b - _np_window_sum(b, n) / n**2
    sab = _np_window_sum(a * b, n)
    saa = np.maximum(_np_window_sum(a * a, n), 1e-20)
    sbb = np.maximum(_np_window_sum(b * b, n), 1e-20)
    return np.moveaxis(sab / (np.sqrt(saa * sbb) + 1e-20), 0, -1)


def _np_fr_loss(fused, ms, pan, *, sensor, ratio=4):
    """The Z-PNN loss in NumPy: spectral L1 after MTF + decimation, thresholded spatial 1 - xcorr, 0.25 weight."""
    from scipy.ndimage import correlate

    gains = wald.sensor_mtf(sensor).ms_gains
    deg = np.stack([correlate(fused[..., b].astype(np.float64), wald.mtf_kernel(gains[b], ratio), mode="nearest")
                    for b in range(fused.shape[-1])], -1)[ratio // 2::ratio, ratio // 2::ratio]
    spectral = np.mean(np.abs(deg - ms))
    ms_up = np.asarray(wald.interp23tap(ms.astype(np.float32), ratio), np.float64)
    pan_lp = correlate(pan.astype(np.float64), wald.mtf_kernel(gains[0], ratio), mode="nearest")
    thr = 1 - _np_xcorr(ms_up, pan_lp, 8)
    x = 1 - np.maximum(_np_xcorr(fused, pan, 2), -1)
    spatial = np.mean(x * (x > thr))
    return spectral, spatial, spectral + 0.25 * spatial


def _smooth(rng, shape, sigma):
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(rng.random(shape), sigma=(sigma, sigma) + (0,) * (len(shape) - 2))


def test_full_resolution_loss_matches_a_numpy_transcription(rng):
    # A scene-like pair scaled as the networks see it (about 0.1-0.4 of full scale), the fused image a noisy
    # sharpening of it, so that both sides of the spatial threshold occur.
    pan = 0.1 + 0.3 * _smooth(rng, (64, 64), 1.5)
    ms = 0.1 + 0.3 * _smooth(rng, (16, 16, 4), 1.0)
    ms_up = np.asarray(wald.interp23tap(ms.astype(np.float32), 4))
    fused = ms_up + 0.5 * (pan - pan.mean())[..., None] * rng.random(4) + 0.01 * rng.standard_normal((64, 64, 4))
    f32 = [np.asarray(v, np.float32) for v in (fused, ms, pan)]
    # the local correlation alone, against the transcription of the authors' xcorr (float32 vs float64)
    np.testing.assert_allclose(np.asarray(jax.jit(partial(adapt.local_correlation, half_width=2))(f32[0], f32[2])),
                               _np_xcorr(fused, pan, 2), atol=2e-4)

    @jax.jit
    def run(fused, ms, pan, ms_up):
        thr = adapt.fr_threshold(ms_up, pan, ratio=4, sensor="IKONOS")
        terms = adapt.full_resolution_terms(fused, ms, pan, thr, ratio=4, sensor="IKONOS")
        # the ideal spatial term: every band of the fused image is the PAN itself (correlation 1 everywhere)
        ideal = adapt.full_resolution_terms(jnp.repeat(pan[..., None], 4, -1), ms, pan, thr, ratio=4, sensor="IKONOS")[1]
        return terms, adapt.full_resolution_loss(fused, ms, pan, thr, ratio=4, sensor="IKONOS"), ideal

    (spectral, spatial), total, ideal = run(*f32, jnp.asarray(ms_up))
    ref = _np_fr_loss(fused, ms, pan, sensor="IKONOS")
    share = float(np.mean(1 - _np_xcorr(fused, pan, 2) > 1 - _np_xcorr(ms_up, pan, 8)))
    assert 0.05 < share < 0.95  # the threshold is active on this input, not all-or-nothing
    # float32 vs float64; a pixel whose margin to the threshold is below float32 rounding may flip (1/16384 each)
    np.testing.assert_allclose([float(spectral), float(spatial), float(total)], ref, rtol=2e-4)
    assert adapt.fr_beta("IKONOS", 4) == 0.25 and adapt.fr_beta("WV2", 8) == 0.36 and adapt.fr_beta("GeoEye1", 4) == 0.25
    assert float(ideal) < 1e-5 < float(spatial)


FULL = os.environ.get("JFUSION_FULL") == "1"


def test_full_resolution_adapt_deterministic_compiles_once_and_refuses_bad_values():
    from test_foundation_shape import count_compilations

    ms, pan, s = _crop()
    ms, pan = ms[:8, :8], pan[:32, :32]
    if not (learned.WEIGHTS_DIR / "pnn-IKONOS.npz").exists():
        pytest.skip("pnn: no shipped IKONOS weights")
    kw = dict(method="pnn", sensor=s.sensor, bit_depth=s.bit_depth)
    for bad in ("full", "Full-Resolution", "zpnn"):  # eager refusals, before any work
        with pytest.raises(FusionInputError, match=r"adapt=.*full-resolution"):
            jfusion.pansharpen(ms, pan, adapt=bad, **kw)
    with pytest.raises(FusionInputError, match="adapt"):
        jfusion.pansharpen(ms, pan, method="gsa", adapt="full-resolution")
    first = np.asarray(jfusion.pansharpen(ms, pan, adapt="full-resolution", adapt_steps=2, **kw))
    with count_compilations() as n:
        again = np.asarray(jfusion.pansharpen(ms, pan, adapt="full-resolution", adapt_steps=2, **kw))
    assert n[0] == 0, f"the repeated call compiled {n[0]} program(s)"
    np.testing.assert_array_equal(first, again)  # deterministic: whole image every step, no random crops
    assert first.shape == (32, 32, 4) and np.isfinite(first).all()


def test_full_resolution_fine_tune_lowers_its_loss_and_the_chunked_form_agrees():
    ms, pan, s = _crop()
    ms, pan = ms[:8, :8], pan[:32, :32]
    if not (learned.WEIGHTS_DIR / "pnn-residual-IKONOS.npz").exists():
        pytest.skip("pnn-residual: no shipped IKONOS weights")
    split, margin, inputs = _network("pnn-residual", ms, s)
    pair = adapt.full_resolution_pair(jnp.asarray(ms), jnp.asarray(pan), ratio=4, sensor=s.sensor, bit_depth=s.bit_depth,
                                      inputs=inputs)
    loss = adapt.full_resolution_objective(split, *pair, ratio=4, sensor=s.sensor, margin=margin)
    # the chunked, time-budgeted form (the CLI's): 2 chunks of 2 steps
    chunked, done = adapt.adapt_eagerly(split, pair[0], pair[1], steps=4, lr=1e-4, margin=margin, chunk=2, progress=False,
                                        objective=loss)
    assert done == 4

    @jax.jit
    def tuned_and_losses(params):
        tuned = adapt.fine_tune_full_resolution((split[0], params, split[2]), *pair, ratio=4, sensor=s.sensor, steps=4,
                                                lr=1e-4, margin=margin)
        return tuned, loss(params), loss(tuned), loss(chunked)

    tuned, before, after, after_chunked = tuned_and_losses(split[1])
    for a, b in zip(jax.tree.leaves(tuned), jax.tree.leaves(chunked)):
        np.testing.assert_array_equal(a, b)  # the same compiled loop body (adapt._steps): bitwise
    assert float(after) < float(before) and float(after_chunked) < float(before)


def test_cli_adapt_loss_refuses_bad_values(tmp_path):
    from typer.testing import CliRunner

    import jfusion.cli

    args = ["pansharpen", "--ms", str(tmp_path / "ms.tif"), "--pan", str(tmp_path / "pan.tif"), "--sensor", "IKONOS",
            "-o", str(tmp_path / "b.tif")]
    bad = CliRunner().invoke(jfusion.cli.app, args + ["-m", "pnn", "--adapt-loss", "zpnn"])
    assert bad.exit_code != 0 and "--adapt-loss 'zpnn'" in bad.output and not (tmp_path / "b.tif").exists()
    bad = CliRunner().invoke(jfusion.cli.app, args + ["-m", "gsa", "--adapt-loss", "full-resolution"])
    assert bad.exit_code != 0 and "--adapt" in bad.output and not (tmp_path / "b.tif").exists()


def test_cli_adapt_full_resolution(tmp_path):
    from typer.testing import CliRunner

    import jfusion.cli
    import tifffile

    ms, pan, s = _crop()
    ms, pan = ms[:16, :16], pan[:64, :64]
    if not (learned.WEIGHTS_DIR / "pnn-IKONOS.npz").exists():
        pytest.skip("pnn: no shipped IKONOS weights")
    tifffile.imwrite(tmp_path / "ms.tif", ms.astype(np.uint16), photometric="minisblack", planarconfig="contig")
    tifffile.imwrite(tmp_path / "pan.tif", pan.astype(np.uint16), photometric="minisblack")
    args = ["pansharpen", "--ms", str(tmp_path / "ms.tif"), "--pan", str(tmp_path / "pan.tif"), "--sensor", "IKONOS",
            "--bit-depth", "11", "-m", "pnn"]
    r = CliRunner().invoke(jfusion.cli.app, args + ["-o", str(tmp_path / "a.tif"), "--adapt-loss", "full-resolution",
                                                    "--adapt-steps", "3"])
    assert r.exit_code == 0, r.output
    assert "adapted pnn to this pair: 3 steps (full-resolution loss)" in r.output and (tmp_path / "a.tif").exists()


def _validation_strip(scene_file):
    from jfusion.pansharpening.io import read_scene
    from jfusion.training import protocol

    s = read_scene(data_path("pansharpening", scene_file))
    ms, pan = protocol.validation_strip(protocol.column_split(s.ms.shape[1], s.ratio), s.ms, s.pan)
    cols = pan.shape[1] // 32 * 32  # QNR's 32-pixel blocks: PAN 1280 x 224, MS 320 x 56
    return np.asarray(ms[:, : cols // 4], np.float32), np.asarray(pan[:, :cols], np.float32), s


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="50 full-resolution Adam steps on the 1280 x 224 validation strip (31 min at load 20-35 on the shared CPU); runs with JFUSION_FULL=1")
@pytest.mark.xfail(strict=True, reason="measured 2026-12-02 (benchmarks/adapt_full_resolution.py): pnn IKONOS validation strip "
                   "QNR 0.8947 unadapted -> 0.7628 with adapt='full-resolution' (50 steps at 1e-4; D_lambda 0.075 -> 0.169, "
                   "D_s 0.033 -> 0.082; GeoEye-1 0.9414 -> 0.8533); at 1e-5 on the strip's first 64 MS rows 0.8556 -> 0.8117. The bar is not met; "
                   "remove this marker once it is")
def test_full_resolution_adapt_does_not_worsen_qnr_on_the_validation_strip():
    from jfusion.pansharpening.evaluation import evaluate_full

    ms, pan, s = _validation_strip("imgIK.mat")
    kw = dict(sensor=s.sensor, bit_depth=s.bit_depth)
    plain = evaluate_full(ms, pan, "pnn", **kw)
    tuned = evaluate_full(ms, pan, "pnn", adapt="full-resolution", **kw)
    # measured (benchmarks/adapt_full_resolution.py, benchmarks/README.md): see the assertion message on failure
    assert tuned["qnr"] >= plain["qnr"], (tuned, plain)
