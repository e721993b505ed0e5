"""cnn-regression (the survey's regression-type framework): exposure synthesis, the network, the method, training."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jfusion
from conftest import data_path
from jfusion import assets
from jfusion.data.synth import exposure_scene
from jfusion.errors import FusionInputError
from jfusion.io import read_image
from jfusion.models.regression import RegressionFusionNet, RegressionNetConfig, halo
from jfusion.training import regression as T
from jfusion.weights import WEIGHTS_DIR

SMALL_NET = RegressionNetConfig(encoder=(4, 8), decoder=(8, 4))


# ----------------------------------------------------------------------------- synthesis
def test_exposure_scene_is_keyed_ordered_and_never_the_truth():
    x = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    a = exposure_scene(jax.random.key(3), x, n_sources=3)
    b = exposure_scene(jax.random.key(3), x, n_sources=3)
    np.testing.assert_array_equal(a["sources"], b["sources"])
    src = np.asarray(a["sources"])
    assert src.shape == (3, 40, 40) and src.min() >= 0 and src.max() <= 1
    np.testing.assert_array_equal(a["truth"], x)
    assert np.all(np.diff(np.asarray(a["ev"])) > 0) and np.all(np.diff(src.reshape(3, -1).mean(1)) > 0)
    assert np.all(np.abs(src - x).mean(axis=(1, 2)) > 0.01)  # every exposure differs from the truth
    np.testing.assert_allclose(src * 255, np.round(src * 255), atol=1e-4)  # 8-bit quantised
    rgb = exposure_scene(jax.random.key(0), np.stack([x] * 3, -1), n_sources=2)["sources"]
    assert rgb.shape == (2, 40, 40, 3)


def test_exposure_scene_without_noise_follows_the_camera_model():
    x = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    r = exposure_scene(jax.random.key(1), x, n_sources=2, noise=0.0, bits=16)
    p, ev = float(r["power"]), np.asarray(r["ev"])
    want = np.clip(x.astype(np.float64) ** (2.2 * p) * 2.0 ** ev[:, None, None], 0, 1) ** (1 / 2.2)
    np.testing.assert_allclose(np.asarray(r["sources"]), want, atol=1e-4)


@pytest.mark.parametrize("kw,match", [({"n_sources": 1}, "n_sources"), ({"power_range": (0.5, 1.0)}, "power_range"),
                                      ({"spread_range": (0.0, 1.0)}, "spread_range")])
def test_exposure_scene_bad_input(kw, match):
    with pytest.raises(FusionInputError, match=match):
        exposure_scene(jax.random.key(0), np.zeros((8, 8), np.float32), **kw)


# ----------------------------------------------------------------------------- the network
def test_network_is_symmetric_in_any_number_of_sources_and_differentiable():
    net = RegressionFusionNet(config=SMALL_NET, rngs=nnx.Rngs(0))
    net.out.kernel.value = 0.1 * jax.random.normal(jax.random.key(1), net.out.kernel.value.shape)
    x = jax.random.uniform(jax.random.key(2), (2, 3, 20, 24))
    y = net(x)
    assert y.shape == (2, 20, 24)
    np.testing.assert_allclose(net(x[:, ::-1]), y, atol=1e-6)  # order of the sources does not matter
    assert net(jnp.concatenate([x, x[:, :1]], axis=1)).shape == (2, 20, 24)  # S = 4
    g = jax.grad(lambda inp: jnp.sum(net(inp)))(x)
    assert g.shape == x.shape and np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).sum()) > 0
    # the receptive field is the declared halo: a change farther away leaves a pixel unchanged
    k = halo(SMALL_NET)
    z = jnp.zeros((1, 2, 64, 64)).at[:, :, 10, 10].set(1.0)
    d = np.abs(np.asarray(net(z) - net(jnp.zeros_like(z))))[0]
    assert d[10, 10 + k + 1 :].max() == 0 and d[10, 10 + k] > 0


def test_untrained_network_is_the_sources_mean():
    net = RegressionFusionNet(config=SMALL_NET, rngs=nnx.Rngs(0))  # zero-initialised last layer: the residual starts at 0
    x = jax.random.uniform(jax.random.key(0), (1, 2, 16, 16))
    np.testing.assert_allclose(net(x), x.mean(axis=1), atol=1e-7)


# ----------------------------------------------------------------------------- the shipped method
SHIPPED = (WEIGHTS_DIR / "cnn_regression_exposure" / "weights.json").exists()
SHIPPED_FOCUS = (WEIGHTS_DIR / "cnn_regression_focus" / "weights.json").exists()


@pytest.mark.skipif(not SHIPPED_FOCUS, reason="cnn_regression_focus weights not shipped")
def test_shipped_focus_network_ships_on_validation_and_restores_a_synthetic_scene():
    from jfusion.data.synth import multifocus_scene

    man = assets.read_manifest(WEIGHTS_DIR / "cnn_regression_focus" / "weights")
    assert man["ships"] is True and man["config"]["task"] == "multi-focus" and man["test_read"] == man["sha256"]
    assert T.ship_decision(man["scores"]["validation"])
    # a scene from a Lytro crop (not one of the natural images the split is drawn from)
    img = read_image(data_path("lytro", "lytro-04-A.jpg"))[128:224, 384:480].mean(-1).astype(np.float32)
    scene = multifocus_scene(jax.random.key(7), img, n_sources=2, sigma_range=(1.5, 3.0))
    fused = np.asarray(jfusion.fuse(np.asarray(scene["sources"]), method="cnn-regression", task="multi-focus"))
    truth, avg = np.asarray(scene["truth"]), np.asarray(scene["sources"]).mean(0)
    b = 12  # the network's halo: the border is zero-padded
    err = lambda f: float(np.mean((f[b:-b, b:-b] - truth[b:-b, b:-b]) ** 2))  # noqa: E731
    assert err(fused) < 0.5 * err(avg), (err(fused), err(avg))


@pytest.mark.skipif(not SHIPPED, reason="cnn_regression_exposure weights not shipped")
def test_shipped_method_fuses_grey_colour_and_three_sources():
    a = read_image(data_path("lytro", "lytro-04-A.jpg"))[192:256, 448:512]
    b = read_image(data_path("lytro", "lytro-04-B.jpg"))[192:256, 448:512]
    rgb = np.asarray(jfusion.fuse([a, b], method="cnn-regression"))
    assert rgb.shape == a.shape and rgb.min() >= 0 and rgb.max() <= 1
    grey = np.asarray(jfusion.fuse([a.mean(-1), b.mean(-1)], method="cnn-regression"))
    assert grey.shape == a.shape[:2]
    three = np.asarray(jfusion.fuse([a.mean(-1), b.mean(-1), a.mean(-1)], method="cnn-regression"))
    assert three.shape == a.shape[:2] and np.isfinite(three).all()
    same = np.asarray(jfusion.fuse([a.mean(-1), b.mean(-1)], method="cnn-regression"))
    np.testing.assert_array_equal(same, grey)


@pytest.mark.skipif(not SHIPPED, reason="cnn_regression_exposure weights not shipped")
def test_shipped_method_compiles_once():  # tiling: tests/test_foundation_tiling.py
    rng = np.random.default_rng(0)
    src = rng.random((2, 72, 80)).astype(np.float32)
    from test_foundation_shape import count_compilations

    fn = jax.jit(lambda s: jfusion.get_method("cnn-regression")(s))
    jax.block_until_ready(fn(jnp.asarray(src)))
    with count_compilations() as n:
        jax.block_until_ready(fn(jnp.asarray(rng.random((2, 72, 80)).astype(np.float32))))
    assert n[0] == 0  # a repeated call compiles nothing


@pytest.mark.skipif(not SHIPPED, reason="cnn_regression_exposure weights not shipped")
def test_shipped_asset_ships_on_validation_and_beats_the_average_there():
    man = assets.read_manifest(WEIGHTS_DIR / "cnn_regression_exposure" / "weights")
    assert man["ships"] is True and man["model"] == "cnn-regression"
    v, t = man["scores"]["validation"], man["scores"]["test"]
    assert T.ship_decision(v) and man["test_read"] == man["sha256"]  # the test split was read once, by the final evaluation
    assert man["config"]["task"] == "multi-exposure" and np.isfinite(t["multi-exposure"]["psnr"])
    assert np.isfinite(t["multi-exposure"]["psnr_mertens"]) and t["multi-exposure"]["scenes"] == t["images"] > 0


def test_bad_weights_are_refused(tmp_path):
    with pytest.raises(FusionInputError, match="no such weights"):
        jfusion.fuse(np.zeros((2, 16, 16), np.float32), method="cnn-regression", weights=str(tmp_path / "none"))
    with pytest.raises(FusionInputError, match="task='focus'"):
        jfusion.fuse(np.zeros((2, 16, 16), np.float32), method="cnn-regression", task="focus")


# ----------------------------------------------------------------------------- training
def test_training_smoke_ships_or_refuses_on_validation_and_resumes(tmp_path, monkeypatch):
    paths = sorted(str(p) for p in (data_path("natural") / "t91").glob("*.png"))[:6]

    def tiny_split(source):
        from jfusion.training import protocol

        out = {"train": paths[:4], "validation": paths[4:5]}
        if protocol.test_allowed():
            out["test"] = paths[5:6]
        return out

    monkeypatch.setattr(T, "split_images", tiny_split)
    cfg = dataclasses.replace(T.RegressionTrainConfig(), task="both", encoder=(4, 8), decoder=(8, 4), steps=4, batch=4, patch=32,
                              per_image=2, val_crop=32, validate_every=2, checkpoint_every=2)
    try:
        man = T.train_and_evaluate(cfg, tmp_path / "run", progress=False)
    except FusionInputError as err:  # 4 steps need not beat the average: the refusal is the protocol working
        assert "does not ship" in str(err)
        man = assets.read_manifest(tmp_path / "run" / "weights")
        assert man["ships"] is False and man["scores"]["test"] == {}
    else:
        assert man["ships"] is True and man["test_read"] == man["sha256"]
        assert man["scores"]["test"]["multi-focus"]["scenes"] == 1
    v = man["scores"]["validation"]
    assert v["multi-exposure"]["sources"] == 3 and np.isfinite(v["multi-focus"]["psnr_laplacian"])
    assert man["steps"] == 4 and "split" in man["data"]
    more = dataclasses.replace(cfg, steps=6)  # continued to more steps from the checkpoints (constant-rate Adam)
    try:
        T.train_and_evaluate(more, tmp_path / "run", progress=False, force=True)
    except FusionInputError as err:
        assert "does not ship" in str(err)
    man2 = assets.read_manifest(tmp_path / "run" / "weights")
    assert man2["steps"] == 6 and [h["step"] for h in man2["history"]["validation"]][:2] == [2, 4]
    out = jfusion.fuse(np.random.default_rng(0).random((2, 16, 16)), method="cnn-regression", weights=str(tmp_path / "run"))
    assert out.shape == (16, 16)
