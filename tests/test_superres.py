"""Fusion with super-resolution: uwt-srcnn (Zhong et al. 2016) and srcnn-fusion (Yang et al. 2017).

Method mechanics run on small SRCNN assets written here (the shipped networks' layout, narrower), so
they do not depend on the shipped weights; the shipped weights are checked against bicubic on the
validation images at the end.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jfusion
from conftest import data_path
from jfusion import assets
from jfusion.errors import FusionInputError
from jfusion.methods import superres as S
from jfusion.methods.registry import get_info
from jfusion.ops.resample import resize
from jfusion.tiling import fuse_tiled
from jfusion.training import protocol
from jfusion.training import superres as T
from jfusion.training.recipes import config_dict
from jfusion.weights import WEIGHTS_DIR, save_params

SMALL = dict(features=(8, 4))


def _asset(folder: Path, target: str, scale: int, *, zero_last: bool = False, seed: int = 0) -> str:
    """A (random-initialised) SRCNN asset of the shipped layout in ``folder``; ``zero_last``: identity network."""
    cfg = dataclasses.replace(T._config(target, scale), seed=seed, **SMALL)
    model = T.build_model(cfg)
    if zero_last:
        model.conv3.kernel[...] = jnp.zeros_like(model.conv3.kernel[...])
        model.conv3.bias[...] = jnp.zeros_like(model.conv3.bias[...])
    man = assets.new_manifest(model=cfg.name, config=config_dict(cfg), data={}, command="test", steps=0, seed=seed)
    save_params(model, folder, man)
    return str(folder)


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    root = tmp_path_factory.mktemp("srnets")
    out = {}
    for target in ("image", "uwt"):
        for scale in (2, 3, 4):
            out[target, scale] = _asset(root / f"{target}{scale}", target, scale)
        out[target, "id"] = _asset(root / f"{target}id", target, 2, zero_last=True)
    return out


def _kind(method: str) -> str:
    return "uwt" if method == "uwt-srcnn" else "image"


METHODS = ("uwt-srcnn", "srcnn-fusion")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("scale", (2, 3, 4))
def test_shapes_and_scales(method, scale, nets, rng):
    src = rng.random((2, 13, 10)).astype(np.float32)
    out = np.asarray(jfusion.fuse(src, method=method, scale=scale, weights=nets[_kind(method), scale]))
    assert out.shape == (13 * scale, 10 * scale) == get_info(method).output_shape((13, 10), {"scale": scale})
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("method", METHODS)
def test_colour_grey_mixed_and_three_sources(method, nets, rng):
    w = nets[_kind(method), 2]
    rgb = rng.random((2, 12, 16, 3)).astype(np.float32)
    out = np.asarray(jfusion.fuse(rgb, method=method, weights=w))
    assert out.shape == (24, 32, 3) and out.min() >= 0 and out.max() <= 1
    mixed = np.asarray(jfusion.fuse([rgb[0], rgb[1].mean(-1)], method=method, weights=w))
    assert mixed.shape == (24, 32, 3)
    # a grey source has neutral chroma: the chroma of the result is the colour source's, bicubic-upsampled
    from jfusion.ops.colour import rgb_to_ycbcr

    want = np.asarray(resize(rgb_to_ycbcr(rgb[0])[..., 1:], (24, 32), method="bicubic"))
    got = np.asarray(rgb_to_ycbcr(jfusion.fuse([rgb[0], rgb[1].mean(-1)], method=method, weights=w, clip=False))[..., 1:])
    np.testing.assert_allclose(got, want, atol=2e-6)
    three = np.asarray(jfusion.fuse(rng.random((3, 12, 16)).astype(np.float32), method=method, weights=w))
    assert three.shape == (24, 32)


@pytest.mark.parametrize("method", METHODS)
def test_identical_sources_give_the_networks_super_resolution(method, nets, rng):
    x = rng.random((11, 14)).astype(np.float32)
    w = nets[_kind(method), 2]
    out = np.asarray(jfusion.fuse([x, x, x], method=method, weights=w, clip=False))
    model = S.load_srcnn(w, scale=2, kind="uwt" if method == "uwt-srcnn" else "srcnn")
    up = S.upsample(x, 2)
    want = S.uwt_enhance(model, up) if method == "uwt-srcnn" else S.srcnn_apply(model, up[None])[0]
    np.testing.assert_allclose(out, np.asarray(want), atol=1e-5)


def test_uwt_srcnn_with_identity_network_equals_pywavelets_choose_max(nets, rng):
    """Reference: PyWavelets swt2/iswt2 and numpy choose-max by |coefficient| of the bicubic-upsampled sources."""
    pywt = pytest.importorskip("pywt")
    src = rng.random((2, 16, 12)).astype(np.float32)
    out = np.asarray(jfusion.fuse(src, method="uwt-srcnn", weights=nets["uwt", "id"], clip=False))
    up = np.asarray(S.upsample(src, 2), np.float64)  # 32 x 24: a multiple of 4, no extension
    cs = [pywt.swt2(u, "haar", level=2, trim_approx=True) for u in up]
    fused = [(cs[0][0] + cs[1][0]) / 2]
    for lvl in range(1, 3):
        fused.append(tuple(np.where(np.abs(cs[0][lvl][k]) >= np.abs(cs[1][lvl][k]), cs[0][lvl][k], cs[1][lvl][k])
                           for k in range(3)))
    want = pywt.iswt2(fused, "haar")
    np.testing.assert_allclose(out, want, atol=1e-5)  # float32 against float64


def _conv_same(x: np.ndarray, k: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy 'same' correlation, x (H, W, Ci), k (kh, kw, Ci, Co)."""
    kh, kw = k.shape[:2]
    p = np.pad(x, (((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))
    h, w = x.shape[:2]
    out = np.zeros((h, w, k.shape[3])) + b
    for i in range(kh):
        for j in range(kw):
            out += p[i : i + h, j : j + w] @ k[i, j]
    return out


def test_srcnn_fusion_matches_a_numpy_reference(nets, rng):
    """Reference: the paper's pipeline written in numpy (float64): shared first layer, SF weights, layers 2-3."""
    from scipy.ndimage import uniform_filter

    src = rng.random((2, 10, 12)).astype(np.float32)
    w = nets["image", 2]
    out = np.asarray(jfusion.fuse(src, method="srcnn-fusion", weights=w, clip=False, sf_small=3, sf_large=7))
    a = assets.read_asset(Path(w) / "weights").arrays
    up = np.asarray(S.upsample(src, 2), np.float64)

    def sf(x, size):
        dx2 = np.pad(np.diff(x, axis=1) ** 2, ((0, 0), (1, 0)))
        dy2 = np.pad(np.diff(x, axis=0) ** 2, ((1, 0), (0, 0)))
        return np.sqrt(uniform_filter(dx2 + dy2, size, mode="reflect"))

    def norm(size):
        m = np.stack([sf(u, size) for u in up])
        return m / m.sum(0)

    wts = 0.5 * (norm(3) + norm(7))
    feats = [np.maximum(_conv_same(u[..., None], a["conv1/kernel"], a["conv1/bias"]), 0) for u in up]
    merged = sum(wt[..., None] * f for wt, f in zip(wts, feats))
    base = (wts * up).sum(0)
    y = np.maximum(_conv_same(merged, a["conv2/kernel"], a["conv2/bias"]), 0)
    y = _conv_same(y, a["conv3/kernel"], a["conv3/bias"])[..., 0] + base
    np.testing.assert_allclose(out, y, atol=2e-5)


def test_sf_weights():
    x = jnp.asarray(np.random.default_rng(1).random((3, 20, 20)), jnp.float32)
    for weighting in S.WEIGHTING:
        w = S.sf_weights(x, weighting=weighting)
        np.testing.assert_allclose(np.asarray(w).sum(0), 1.0, atol=1e-6)
    hard = np.asarray(S.sf_weights(x, weighting="choose-max"))
    assert set(np.unique(hard)) <= {0.0, 1.0}
    flat = np.asarray(S.sf_weights(jnp.full((2, 8, 8), 0.3)))
    np.testing.assert_allclose(flat, 0.5)


@pytest.mark.parametrize("method", METHODS)
def test_jit_compiles_once_vmap_and_grad(method, nets, rng):
    from test_foundation_shape import count_compilations

    w = nets[_kind(method), 2]
    fn = jax.jit(lambda s: jfusion.get_method(method)(s, weights=w))
    a = jnp.asarray(rng.random((2, 12, 12)), jnp.float32)
    b = (a * 0.5).block_until_ready()
    fn(a).block_until_ready()
    with count_compilations() as n:
        fn(b).block_until_ready()
    assert n[0] == 0
    batch = jnp.asarray(rng.random((3, 2, 12, 12)), jnp.float32)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(fn))(batch)), np.stack([np.asarray(fn(b)) for b in batch]), atol=1e-5)
    g = jax.grad(lambda s: jnp.sum(jfusion.get_method(method)(s, weights=w, clip=False) ** 2))(a)
    assert g.shape == a.shape and np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).sum()) > 0


@pytest.mark.parametrize("method", METHODS)
def test_bad_input(method, nets, rng):
    src = rng.random((2, 12, 12)).astype(np.float32)
    w2 = nets[_kind(method), 2]
    with pytest.raises(FusionInputError, match="scale"):
        jfusion.fuse(src, method=method, scale=5, weights=w2)
    with pytest.raises(FusionInputError, match="scale"):
        jfusion.fuse(src, method=method, scale=2.5, weights=w2)
    with pytest.raises(FusionInputError, match="trained for scale 3"):
        jfusion.fuse(src, method=method, scale=2, weights=nets[_kind(method), 3])
    other = nets["image" if method == "uwt-srcnn" else "uwt", 2]
    with pytest.raises(FusionInputError, match="weights="):
        jfusion.fuse(src, method=method, weights=other)
    with pytest.raises(FusionInputError, match="no such weights"):
        jfusion.fuse(src, method=method, weights="/nonexistent/folder")
    with pytest.raises(FusionInputError, match="sources"):
        jfusion.fuse(src[:1], method=method, weights=w2)
    with pytest.raises(FusionInputError, match="at least 4x4 pixels, got 3x2"):
        jfusion.fuse(list(src[:, :3, :2]), method=method, weights=w2)
    with pytest.raises(FusionInputError, match="cannot be tiled exactly"):
        fuse_tiled(src, method, weights=w2, local_statistics=True)


def test_registry_declares_the_output_size():
    for m in METHODS:
        info = get_info(m)
        assert info.scale_option == "scale" and info.output_scale({}) == 2 and info.output_scale({"scale": 4}) == 4
        assert set(info.tasks) >= {"multi-focus", "medical", "infrared-visible"}
        assert info.option("scale").choices == (2, 3, 4)
    assert get_info("laplacian").output_shape((5, 6, 3)) == (5, 6, 3)


# ----------------------------------------------------------------------------- training
def _tiny_split(paths):
    def split(source):
        out = {"train": paths[:3], "validation": paths[3:5]}
        if protocol.test_allowed():
            out["test"] = paths[5:6]
        return out

    return split


def test_image_split_is_fixed_and_test_is_guarded():
    root = data_path("natural")
    s = T.split_images(root)
    assert "test" not in s and len(s["validation"]) > 10 and len(s["train"]) > 200
    with protocol.reading_test():
        t = T.split_images(root)
    assert t["train"] == s["train"] and t["validation"] == s["validation"]
    assert len(t["test"]) > 10 and not set(t["test"]) & set(s["train"] + s["validation"])


@pytest.mark.parametrize("target", ("image", "uwt"))
def test_training_smoke_resume_and_manifest(target, tmp_path, monkeypatch):
    paths = sorted(str(p) for p in (data_path("natural") / "t91").glob("*.png"))[:6]
    monkeypatch.setattr(T, "split_images", _tiny_split(paths))
    cfg = dataclasses.replace(T._config(target, 2), steps=4, batch=4, per_image=4, val_crops=1, val_crop=32, val_border=4,
                              validate_every=2, checkpoint_every=2, **SMALL)
    try:
        man = T.train_and_evaluate(cfg, tmp_path / "run", progress=False)
    except FusionInputError as err:  # 4 steps need not beat bicubic: the refusal is the protocol working
        assert "does not ship" in str(err)
        man = assets.read_manifest(tmp_path / "run" / "weights")
        assert man["ships"] is False and man["scores"]["test"] == {}
    else:
        assert man["ships"] is True and man["scores"]["test"]["crops"] == 1 and man["test_read"] == man["sha256"]
    assert man["config"]["target"] == target and man["steps"] == 4 and "split" in man["data"]
    v = man["scores"]["validation"]
    assert v["crops"] == 2 and np.isfinite(v["psnr"]) and np.isfinite(v["psnr_bicubic"])
    # continuing to more steps resumes from the checkpoints (constant-rate optimiser)
    more = dataclasses.replace(cfg, steps=6)
    try:
        T.train_and_evaluate(more, tmp_path / "run", progress=False, force=True)
    except FusionInputError as err:
        assert "does not ship" in str(err)
    man2 = assets.read_manifest(tmp_path / "run" / "weights")
    assert man2["steps"] == 6 and [h["step"] for h in man2["history"]["validation"]][:2] == [2, 4]
    out = jfusion.fuse(np.random.default_rng(0).random((2, 8, 8)), method="srcnn-fusion" if target == "image" else "uwt-srcnn",
                       weights=str(tmp_path / "run"))
    assert out.shape == (16, 16)


# ----------------------------------------------------------------------------- shipped weights
@pytest.mark.parametrize("kind,name,scale", [(k, f"{n}_x{s}", s) for s in (2, 3, 4) for k, n in (("image", "srcnn"), ("uwt", "uwt_srcnn"))])
def test_shipped_weights_load_and_beat_bicubic_on_validation(kind, name, scale):
    folder = WEIGHTS_DIR / name
    if not (folder / "weights.json").exists():
        pytest.skip(f"{name} not shipped")
    man = assets.read_manifest(folder / "weights")
    cfg = T.CONFIGS[man["model"]]
    cfg = dataclasses.replace(cfg, **{k: man["config"][k] for k in ("steps", "batch", "lr", "seed", "val_crops", "val_crop")})
    assert man["ships"] and man["scores"]["validation"]["psnr"] > man["scores"]["validation"]["psnr_bicubic"]
    root = data_path("natural")
    # all validation crops (salt 1, as the recipe draws them): the stored score is reproduced, and the gain holds on
    # the set the ship decision used (on a 6-image subset the x3 network's +0.5 dB was -0.01: too few crops to say)
    val = T.split_images(root)["validation"]
    up, hr = T.eval_crops(val, dataclasses.replace(cfg, data=str(root)), salt=1)
    assert man["config"]["scale"] == scale
    model = S.load_srcnn(None, scale=scale, kind="uwt" if kind == "uwt" else "srcnn")
    r = T.score_crops(model, up, hr, cfg)
    assert r["psnr"] > r["psnr_bicubic"], r
    assert abs(r["psnr"] - man["scores"]["validation"]["psnr"]) < 0.01, (r, man["scores"]["validation"])
