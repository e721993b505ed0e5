"""Deep HDR (Kalantari 2017): stack synthesis, the merge network's three variants, the method and its training batches."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

import jax
import jax.numpy as jnp
from flax import nnx

import jfusion
from jfusion import FusionInputError, assets, hdr
from jfusion.data.hdr import HDRSynthConfig, split_sources, synthesize_batch, synthesize_stack
from jfusion.models.hdr import ARCHS, HDRMergeNet, HDRNetConfig, merge, network_inputs
from jfusion.training.hdr import HDRTrainConfig, _make_batch_fn, baselines


def _image(rng, n=16):
    return rng.random((n, n, 3)).astype(np.float32)


def test_synthesis_is_keyed_and_physical(rng):
    cfg = HDRSynthConfig(noise=0.0)
    img = _image(rng, 24)
    a = synthesize_stack(jax.random.key(3), img, config=cfg)
    b = synthesize_stack(jax.random.key(3), img, config=cfg)
    c = synthesize_stack(jax.random.key(4), img, config=cfg)
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))
    assert not np.array_equal(np.asarray(a["ldr"]), np.asarray(c["ldr"]))
    np.testing.assert_allclose(np.asarray(a["times"]), [1, 4, 16])
    assert a["ldr"].shape == (3, 24, 24, 3) and a["radiance"].shape == (24, 24, 3)
    # the reference is the unmoved radiance through the gamma camera, 8-bit quantised
    ref = np.round(np.clip(np.asarray(a["radiance"]) * 4.0, 0, 1) ** (1 / 2.2) * 255) / 255
    np.testing.assert_allclose(np.asarray(a["ldr"][1]), ref, atol=1e-6)
    assert np.all(np.asarray(a["motion"][1]) == 0) and np.abs(np.asarray(a["motion"][0])).max() > 0
    assert 0.0 <= float(a["radiance"].min()) and float(a["radiance"].max()) <= 1.0
    assert set(np.unique(np.round(np.asarray(a["ldr"]) * 255, 4)) % 1) == {0.0}


def test_split_sources_is_fixed_and_disjoint():
    paths = [f"/x/{i:03d}.png" for i in range(40)]
    s = split_sources(paths[::-1])
    assert s == split_sources(paths)
    assert len(s["test"]) == 4 and len(s["val"]) == 4 and len(s["train"]) == 32
    assert not set(s["test"]) & set(s["val"]) and not set(s["train"]) & (set(s["test"]) | set(s["val"]))


def test_network_inputs_are_the_papers_18_channels(rng):
    z = rng.random((2, 3, 5, 6, 3)).astype(np.float32)
    t = np.array([[1, 4, 16], [1, 8, 64]], np.float32)
    x, h = network_inputs(z, t)
    assert x.shape == (2, 5, 6, 18)
    np.testing.assert_allclose(np.asarray(x[..., 3:6]), z[:, 1], atol=0)  # I2
    np.testing.assert_allclose(np.asarray(x[..., 15:18]), z[:, 2] ** 2.2 / t[:, 2, None, None, None], rtol=1e-5)  # H3


@pytest.mark.parametrize("arch", ARCHS)
def test_variants_shapes_blend_and_gradients(arch, rng):
    model = HDRMergeNet(config=HDRNetConfig(arch=arch, widths=(8, 8, 4)), rngs=nnx.Rngs(0))
    z = jnp.asarray(rng.random((2, 3, 14, 14, 3)).astype(np.float32))
    t = jnp.asarray([[1.0, 4.0, 16.0]] * 2)
    out, refined = merge(model, z, t)
    assert out.shape == (2, 14, 14, 3) and bool(jnp.all(jnp.isfinite(out)))
    assert (refined is not None) == (arch == "wie")
    y = model(network_inputs(z, t)[0])
    if arch in ("we", "wie"):  # the blend: sum_j a_j H_j / sum_j a_j with per-channel weights
        a = np.asarray(y[..., :9]).reshape(2, 14, 14, 3, 3)
        imgs = np.asarray(refined) if arch == "wie" else np.asarray(z)
        hj = np.moveaxis(imgs, 1, 3) ** 2.2 / np.asarray(t)[:, None, None, :, None]
        np.testing.assert_allclose(np.asarray(out), (a * hj).sum(3) / (a.sum(3) + 1e-6), rtol=2e-4, atol=1e-6)
    else:  # direct: the network's output is the tonemapped image
        np.testing.assert_allclose(np.asarray(hdr.mu_law(out)), np.asarray(y), atol=1e-4)
    target = jnp.asarray(rng.random((2, 14, 14, 3)).astype(np.float32)) * 0.2
    params = nnx.state(model, nnx.Param)
    graphdef, _, rest = nnx.split(model, nnx.Param, ...)
    grads = jax.grad(lambda p: hdr.mu_law_loss(merge(nnx.merge(graphdef, p, rest), z, t)[0], target))(params)
    norms = [float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads)]
    assert all(np.isfinite(norms)) and all(n > 0 for n in norms)


def test_training_batches_are_reproducible_and_consistent(rng):
    cfg = HDRTrainConfig(batch=6, patch=12, synth=HDRSynthConfig(noise=0.0))
    st = synthesize_batch(jax.random.key(0), rng.random((4, 20, 20, 3)).astype(np.float32), config=cfg.synth)
    data = {"aligned": st["ldr"], "times": st["times"], "radiance": st["radiance"]}
    fn = _make_batch_fn(data, cfg)
    a, b = fn(5), fn(5)
    np.testing.assert_array_equal(np.asarray(a["aligned"]), np.asarray(b["aligned"]))
    assert not np.array_equal(np.asarray(fn(6)["aligned"]), np.asarray(a["aligned"]))
    assert a["aligned"].shape == (6, 3, 12, 12, 3) and a["radiance"].shape == (6, 12, 12, 3)
    # flips, rotations and channel permutations move the reference and its ground truth together
    ref = np.round(np.clip(np.asarray(a["radiance"]) * 4.0, 0, 1) ** (1 / 2.2) * 255) / 255
    np.testing.assert_allclose(np.asarray(a["aligned"][:, 1]), ref, atol=1e-6)


def test_baselines_on_a_static_stack(rng):
    cfg = HDRSynthConfig(noise=0.0, max_shift=0.0, warp_amplitude=0.0)
    st = synthesize_batch(jax.random.key(1), rng.random((2, 32, 32, 3)).astype(np.float32), config=cfg)
    data = {"ldr": st["ldr"], "aligned": st["ldr"], "times": st["times"], "radiance": st["radiance"]}
    b = baselines(data)
    assert set(b) == {"mertens", "flow_average", "flow_hat_average"}
    # static, noise-free: the triangle-weighted merge recovers the radiance well (> 35 dB PSNR-mu)
    assert b["flow_hat_average"]["psnr_mu"] > 35.0


def _asset(tmp_path, arch="we"):
    model = HDRMergeNet(config=HDRNetConfig(arch=arch, widths=(8, 8, 4)), rngs=nnx.Rngs(0))
    man = assets.new_manifest(model=f"deep-hdr/{arch}", config={"model": model.config.to_dict()}, data="test",
                              command="test", steps=0, seed=0)
    assets.write_asset(tmp_path / arch, assets.params_to_arrays(nnx.state(model, nnx.Param)), man)
    return str(tmp_path / arch)


def test_method_registered_outputs_and_bad_input(tmp_path, rng):
    assert "deep-hdr" in [m.name for m in jfusion.list_methods(task="multi-exposure")]
    w = _asset(tmp_path)
    x = rng.random((3, 24, 28, 3)).astype(np.float32)
    kw = dict(weights=w, flow_iterations=3, flow_warps=1)
    tm = np.asarray(jfusion.fuse(x, method="deep-hdr", **kw))
    rad = np.asarray(jfusion.fuse(x, method="deep-hdr", output="radiance", **kw))
    assert tm.shape == (24, 28, 3) and 0.0 <= tm.min() and tm.max() <= 1.0
    np.testing.assert_allclose(tm, np.asarray(hdr.mu_law(rad)), atol=1e-5)
    grey = np.asarray(jfusion.fuse(x[..., 0], method="deep-hdr", **kw))
    assert grey.shape == (24, 28)
    with pytest.raises(FusionInputError, match="arch"):
        jfusion.fuse(x, method="deep-hdr", arch="big", **kw)
    with pytest.raises(FusionInputError, match="output"):
        jfusion.fuse(x, method="deep-hdr", output="ldr", **kw)
    with pytest.raises(FusionInputError, match="ev"):
        jfusion.fuse(x, method="deep-hdr", ev=(0.0, 2.0), **kw)
    with pytest.raises(FusionInputError):
        jfusion.fuse(x[:2], method="deep-hdr", **kw)
    with pytest.raises(FusionInputError, match="jfusion train deep-hdr"):
        jfusion.fuse(x, method="deep-hdr", weights=str(tmp_path / "absent"))
    with pytest.raises(FusionInputError, match="arch"):
        jfusion.fuse(x, method="deep-hdr", arch="wie", weights=w)  # a 'we' asset asked for as 'wie'


def test_method_compiles_once_and_asks_for_full_precision(tmp_path, rng):
    from test_foundation_precision import default_precision_products
    from test_foundation_shape import count_compilations

    w = _asset(tmp_path)
    x = rng.random((3, 24, 28, 3)).astype(np.float32)
    kw = dict(weights=w, flow_iterations=3, flow_warps=1)
    first = jfusion.fuse(x, method="deep-hdr", **kw)
    with count_compilations() as n:
        second = jfusion.fuse(x, method="deep-hdr", **kw)
    assert n[0] == 0
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    fn = jfusion.get_method("deep-hdr")
    assert default_precision_products(lambda s: fn(s, **kw), jnp.asarray(x)) == []


@pytest.mark.skipif(os.environ.get("JFUSION_FULL") != "1",
                    reason="compiles a training step, validation, test and the baselines (about 30 s CPU, minutes on the shared 2 cores); "
                    "runs with JFUSION_FULL=1")
def test_train_and_evaluate_chooses_on_validation_and_resumes_the_best(tmp_path, rng, monkeypatch):
    """The shipped step is the best validation PSNR-mu; a restarted run keeps it (checkpointed beside the run);
    the ship decision is the validation rule against the validation baselines; the test stacks are scored once,
    into ``scores.test``, apart from ``scores.validation``, and only for an asset that ships."""
    import jfusion.training.hdr as training_hdr
    from jfusion.training.hdr import HDRData, ship_decision, train_and_evaluate

    cfg = HDRTrainConfig(model=HDRNetConfig(arch="we", widths=(4, 4, 4)), steps=4, batch=2, patch=14, lr=1e-2, warmup=1,
                         validate_every=1, checkpoint_every=1, synth=HDRSynthConfig(noise=0.0))

    def split(seed, n):
        st = synthesize_batch(jax.random.key(seed), rng.random((n, 32, 32, 3)).astype(np.float32), config=cfg.synth)
        return {"ldr": st["ldr"], "aligned": st["ldr"], "times": st["times"], "radiance": st["radiance"]}

    data = HDRData(split(0, 4), split(1, 2), split(2, 2), {"train": 4, "val": 2, "test": 2})
    man = train_and_evaluate(cfg, tmp_path, progress=False, data=data)
    hist = man["history"]["validation"]
    assert [v["step"] for v in hist] == [1, 2, 3, 4]
    best = max(hist, key=lambda v: v["val_psnr_mu"])
    assert man["steps"] == best["step"] == man["scores"]["validation"]["step"]
    val = man["scores"]["validation"]
    assert val["psnr_mu"] == best["val_psnr_mu"]
    assert set(val["baselines"]) == {"mertens", "flow_average", "flow_hat_average"}
    assert man["ships"] == ship_decision(val) == all(val["psnr_mu"] > b["psnr_mu"] for b in val["baselines"].values())
    test = man["scores"]["test"]
    if man["ships"]:
        assert set(test) >= {"deep-hdr", "mertens", "flow_average", "flow_hat_average"} and test["stacks"] == 2
    else:
        assert test == {}
    # the other branch of the decision (a second 4-step run in its own folder)
    monkeypatch.setattr(training_hdr, "ship_decision", lambda v: not man["ships"])
    other = train_and_evaluate(cfg, tmp_path / "other", progress=False, data=data)
    assert other["ships"] != man["ships"]
    assert (set(other["scores"]["test"]) >= {"deep-hdr", "flow_average"}) == other["ships"]
    monkeypatch.undo()
    first = assets.read_asset(tmp_path / "deep_hdr" / "we").arrays
    # run again over the finished checkpoints: nothing trains, the best step and its weights come back
    again = train_and_evaluate(cfg, tmp_path, progress=False, data=data, force=True)
    assert again["steps"] == man["steps"] and again["scores"] == man["scores"]
    second = assets.read_asset(tmp_path / "deep_hdr" / "we").arrays
    for k in first:
        np.testing.assert_array_equal(first[k], second[k])


def test_ship_rule_and_install_refused_for_an_asset_that_does_not_ship(tmp_path, monkeypatch):
    """``ship_decision`` needs every baseline beaten in validation PSNR-mu; ``train_recipe(install=True)`` of a run
    that does not ship raises a FusionInputError naming the scores and installs nothing into the package."""
    import jfusion.training.hdr as training_hdr
    from jfusion.training.hdr import ship_decision, train_recipe
    from jfusion.weights import WEIGHTS_DIR

    base = {"mertens": {"psnr_mu": 20.0}, "flow_average": {"psnr_mu": 36.0}, "flow_hat_average": {"psnr_mu": 35.0}}
    assert ship_decision({"psnr_mu": 36.5, "baselines": base})
    assert not ship_decision({"psnr_mu": 35.5, "baselines": base})
    assert not ship_decision({"psnr_mu": 36.0, "baselines": base})  # a tie does not ship
    man = {"ships": False, "scores": {"validation": {"psnr_mu": 33.05, "step": 1200, "baselines": base}, "test": {}}}
    monkeypatch.setattr(training_hdr, "train_and_evaluate", lambda *a, **k: man)
    cfg = dataclasses.replace(HDRTrainConfig(), model=dataclasses.replace(HDRTrainConfig().model, arch="wie"))
    before = sorted(p.name for p in (WEIGHTS_DIR / "deep_hdr").iterdir())
    with pytest.raises(FusionInputError, match=r"deep-hdr-wie: not installed.*33\.05 dB at step 1200 vs flow_average 36\.00"):
        train_recipe(cfg, tmp_path, install=True, progress=False)
    assert sorted(p.name for p in (WEIGHTS_DIR / "deep_hdr").iterdir()) == before
    assert train_recipe(cfg, tmp_path, install=False, progress=False) is man  # without install: the run's record


@pytest.mark.parametrize("arch", ["we", "direct"])
def test_shipped_assets_ship_on_validation_and_fuse(arch, rng):
    """Each shipped deep-hdr asset records validation scores above the rule's baselines (where its manifest holds
    them) and test scores apart; the default weights of ``arch`` load and fuse a stack to an image in [0, 1]."""
    from jfusion.training.hdr import ship_decision
    from jfusion.weights import WEIGHTS_DIR

    man = assets.read_manifest(WEIGHTS_DIR / "deep_hdr" / arch)
    val, test = man["scores"]["validation"], man["scores"]["test"]
    if "baselines" in val:  # runs since the ship rule moved into the training code
        assert man["ships"] and ship_decision(val)
    assert {"deep-hdr", "flow_hat_average"} <= set(test) and test["stacks"] == man["data"]["n_stacks"]["test"]
    st = synthesize_stack(jax.random.key(3), rng.random((40, 44, 3)).astype(np.float32))
    out = np.asarray(jfusion.fuse(st["ldr"], method="deep-hdr", arch=arch, flow_iterations=5, flow_warps=1))
    assert out.shape == (40, 44, 3) and np.isfinite(out).all() and 0.0 <= out.min() and out.max() <= 1.0
