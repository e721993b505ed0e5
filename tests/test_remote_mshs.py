"""3-D CNN MS/HS fusion (cnn3d-mshs): scene protocols, shipped weights per scene (Houston HS+RGB,
Paris Hyperion HS + ALI MS, Paris HS + ALI PAN) beat the bicubic HS on the held-out quarter,
``sensor=`` selection and band-count errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

import jfusion
from jfusion.assets import find_assets, read_manifest
from jfusion.errors import FusionInputError
from jfusion.pansharpening import learned, mshs, wald
from jfusion.pansharpening.io import read_hs_scene

sys.path.insert(0, str(Path(__file__).parent))
from conftest import data_path  # noqa: E402
from remote_metrics_np import ergas, q2n, sam  # noqa: E402

FILES = {"houston": "houston_dataset.mat", "paris-ms": "paris_data_hs_ms.mat", "paris-pan": "paris_data_hs_pan.mat"}


def _shipped() -> dict[str, dict]:
    entries = [read_manifest(p) for p in find_assets(learned.WEIGHTS_DIR, pattern="cnn3d-mshs-*")]
    return {v["sensor"]: v for v in entries}


SHIPPED = sorted(_shipped())


def uiqi_np(ref: np.ndarray, fused: np.ndarray, block: int = 8) -> float:
    """Mean over bands of the Wang-Bovik UIQI map on sliding ``block`` windows (valid positions), NumPy."""
    ref = np.asarray(ref, np.float64)
    fused = np.asarray(fused, np.float64)
    h = block // 2
    qs = []
    for b in range(ref.shape[-1]):
        x, y = ref[..., b], fused[..., b]
        m = lambda v: uniform_filter(v, block, mode="constant")[h : v.shape[0] - h + 1, h : v.shape[1] - h + 1]  # noqa: E731
        mx, my = m(x), m(y)
        vx, vy, cxy = m(x * x) - mx**2, m(y * y) - my**2, m(x * y) - mx * my
        qs.append(np.mean(4 * cxy * mx * my / ((vx + vy) * (mx**2 + my**2))))
    return float(np.mean(qs))


def test_split_columns_keeps_whole_low_resolution_pixels():
    assert mshs.split_columns(128, 4) == (0, 96)  # Houston
    assert mshs.split_columns(72, 3) == (0, 54)  # Paris HS+MS (HS degraded by 3)
    assert mshs.split_columns(58, 3) == (1, 43)  # Paris HS+PAN: column 0 dropped, 42 + 15 columns
    for w, r in ((128, 4), (72, 3), (58, 3), (61, 4)):
        first, col = mshs.split_columns(w, r)
        assert (col - first) % r == 0 and (w - col) % r == 0 and w - col >= w // 4


def test_training_pair_protocols():
    rng = np.random.default_rng(0)
    hs = rng.random((24, 18, 10)).astype(np.float32)
    ms = rng.random((24, 18, 4)).astype(np.float32)
    hs_lr, hr_in, r = mshs.training_pair(hs, ms, scene_ratio=1)  # one grid: HS degraded by 3, MS kept
    assert r == 3 and hs_lr.shape == (8, 6, 10) and np.array_equal(np.asarray(hr_in), ms)
    pan = rng.random((72, 54, 1)).astype(np.float32)
    hs_lr, hr_in, r = mshs.training_pair(hs, pan, scene_ratio=3)  # real pair: both degraded (Wald)
    assert r == 3 and hs_lr.shape == (8, 6, 10) and hr_in.shape == (24, 18, 1)


def _validation_inputs(key: str):
    """The scene's validation strip (jfusion.training.protocol), its reduced-resolution inputs and ratio: tests never
    read a learned model's test strip (the final report does)."""
    from jfusion.training import protocol

    s = read_hs_scene(data_path("hyperspectral", FILES[key]))
    q = s.ratio if s.ratio > 1 else mshs.SIMULATED_RATIO
    first, _ = mshs.split_columns(s.hs.shape[1], q)
    split = protocol.column_split(s.hs.shape[1], q, first=first)
    hs_te, hr_te = protocol.validation_strip(split, s.hs, s.hr, scale=s.ratio)
    hs_lr, hr_in, q = mshs.training_pair(hs_te, hr_te, scene_ratio=s.ratio)
    return s, hs_te, hr_te, np.asarray(hs_lr), np.asarray(hr_in), q


@pytest.mark.parametrize("key", SHIPPED)
def test_cnn3d_shipped_beats_bicubic_on_its_validation_strip(key):
    meta = _shipped()[key]
    s, hs_te, _, hs_lr, hr_in, q = _validation_inputs(key)
    # the manifest records the validation columns that are scored here (never trained on; the ship rule's data)
    assert meta["scene"] == FILES[key] and meta["ships"] is True
    assert meta["validation_region"].startswith("HS columns ") and f"-{int(meta['test_region'].split()[2].split('-')[0]) - 1} " in meta["validation_region"]
    out = np.asarray(jfusion.pansharpen(hs_lr, hr_in, method="cnn3d-mshs", scene=key))
    exp = np.asarray(wald.upsample_ms(hs_lr, q, interp="bicubic"))
    assert out.shape == hs_te.shape and np.all(np.isfinite(out))
    a, a0 = sam(hs_te, out), sam(hs_te, exp)
    e, e0 = ergas(hs_te, out, q), ergas(hs_te, exp, q)
    if hs_te.shape[1] >= 32:  # Houston: Q2n on 32x32 blocks
        qm, qb = q2n(hs_te, out), q2n(hs_te, exp)
    else:  # the validation strips are 12-24 px wide: per-band Q on 8x8 windows
        qm, qb = uiqi_np(hs_te, out), uiqi_np(hs_te, exp)
    assert qm > qb and a < a0 and e < e0, f"{key}: Q {qm:.4f}/{qb:.4f} SAM {a:.3f}/{a0:.3f} ERGAS {e:.3f}/{e0:.3f} (model/bicubic)"
    # sensor=None picks the one shipped model that fits the band counts and the ratio
    auto = np.asarray(jfusion.pansharpen(hs_lr, hr_in, method="cnn3d-mshs"))
    np.testing.assert_allclose(auto, out, rtol=1e-5, atol=1e-6)
    # band count differing from the trained model's
    with pytest.raises(FusionInputError, match=f"{meta['bands']} HS bands"):
        jfusion.pansharpen(hs_lr[..., :-2], hr_in, method="cnn3d-mshs", scene=key)


@pytest.mark.skipif("paris-pan" not in SHIPPED, reason="cnn3d-mshs paris-pan weights not shipped")
def test_cnn3d_paris_pan_takes_a_2d_pan_at_full_resolution():
    s, hs_te, hr_te, *_ = _validation_inputs("paris-pan")
    out = np.asarray(jfusion.pansharpen(hs_te, hr_te[..., 0], method="cnn3d-mshs", scene="paris-pan"))
    assert out.shape == (hr_te.shape[0], hr_te.shape[1], 128) and np.all(np.isfinite(out))
    full = _shipped()["paris-pan"]["scores"]["test"]
    assert set(full["model_full"]) == {"d_lambda", "d_s", "qnr"} and 0 < full["model_full"]["qnr"] <= 1


def test_cnn3d_bad_sensor_and_ratio():
    hs = np.ones((8, 8, 48), np.float32)
    rgb = np.ones((32, 32, 3), np.float32)
    with pytest.raises(FusionInputError, match="scene="):
        jfusion.pansharpen(hs, rgb, method="cnn3d-mshs", scene="pavia")
    with pytest.raises(FusionInputError, match="scene="):
        jfusion.pansharpen(hs[..., :7], rgb, method="cnn3d-mshs")  # no shipped model has 7 HS bands
    # `sensor` names a pan-sharpening sensor only: the scene models say which keyword they take.
    with pytest.raises(FusionInputError, match=r"sensor='houston'.*pass scene="):
        jfusion.pansharpen(hs, rgb, method="cnn3d-mshs", sensor="houston")
    if "houston" in SHIPPED:
        with pytest.raises(FusionInputError, match="ratio 4"):
            jfusion.pansharpen(hs, np.ones((16, 16, 3), np.float32), method="cnn3d-mshs", scene="houston")


def test_train_cnn3d_one_grid_scene_with_step_selection(tmp_path):
    """A tiny HS + MS scene on one grid (Paris layout): trains on the train strip with early stopping on the
    validation strip (jfusion.training.protocol) and writes the weights and the manifest entry."""
    import scipy.io as sio

    from jfusion.training.pansharpening import train_cnn3d_mshs

    rng = np.random.default_rng(0)
    hs = rng.random((24, 24, 6)) @ rng.random((6, 6)) + 0.1
    ms = hs @ rng.random((6, 3))
    sio.savemat(tmp_path / "tiny_hs_ms.mat", {"HSim": hs, "MSim": ms})
    meta = train_cnn3d_mshs(tmp_path / "tiny_hs_ms.mat", steps=30, batch=4, patch=9, n_components=4, select_steps=True,
                            out_dir=tmp_path, log=None)
    assert meta["sensor"] == "tiny" and meta["ratio"] == 3 and meta["ms_bands"] == 3
    assert meta["train_region"] == "HS columns 0-11" and meta["validation_region"].startswith("HS columns 12-17")
    assert meta["test_region"].startswith("HS columns 18-23")
    vals = {int(k): v for k, v in meta["val_losses"].items()}
    assert sorted(vals) == [25, 30] and meta["steps"] == min(vals, key=vals.get) and meta["max_steps"] == 30
    assert (tmp_path / "cnn3d-mshs-tiny.npz").exists()
    assert read_manifest(tmp_path / "cnn3d-mshs-tiny")["steps"] == meta["steps"] and (tmp_path / "cnn3d-mshs-tiny.json").exists()
