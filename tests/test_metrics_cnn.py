"""The learned fusion metric ``cnn_metric`` (survey Fig. 8, issue 14 item 5): registry entry, behaviour of the shipped
weights on held-out (validation) images, jit / vmap / grad, bad input, the distortion data and the training recipe.

The shipped network is checked on the *validation* images of its fixed split (never the test images, which only the
final evaluation reads). Thresholds are stated per test; they were set from the figures the shipped weights give
(see benchmarks/README.md, "Learned fusion metric") with a margin, and are not loosened to pass.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jfusion
from jfusion import FusionInputError
from jfusion.data.distort import HELD_OUT_KINDS, KINDS, TRAIN_KINDS, distort, patch_ssim, quantise_similarity, sample_metric_batch
from jfusion.metrics import cnn_metric, cnn_metric_map, get_metric_info
from jfusion.training import protocol
from jfusion.training.metric import CONFIG, _grey_crops, natural_split, train_metric

from conftest import data_path

FULL = os.environ.get("JFUSION_FULL") == "1"
SCORE = jax.jit(cnn_metric)  # one compilation per shape for the whole module (eager calls compile op by op)


@pytest.fixture(scope="module")
def split():
    from jfusion.data.folder import image_paths

    return natural_split(image_paths(data_path("natural")))


@pytest.fixture(scope="module")
def val_images(split):
    """Six validation images (held out from training), 32 x 32 grey centre crops (small: one compile per test is the cost)."""
    return _grey_crops(list(split.validation[:6]), 32)


def test_registry_entry():
    info = get_metric_info("cnn_metric")
    assert info.direction == "higher" and info.kind == "fusion" and not info.needs_reference
    assert info.range == (0.0, 1.0) and info.ideal is None and info.symmetric and info.colour == "gray"
    assert info.family == "learned" and "weights" in {o.name for o in info.options}
    assert "cnn_metric" in jfusion.metrics.metric_names()
    from jfusion.training.recipes import get_recipe

    r = get_recipe("cnn-metric")
    assert r.family == "metric" and "weights/cnn_metric/weights" in r.presets
    m = jfusion.weights.read_manifest("cnn_metric")
    assert m["model"] == "cnn-metric" and m["ships"] and m["scores"]["test"] and m["test_read"]["sha256"] == m["sha256"]
    assert m["config"]["model"]["arch"] == "2ch" and m["config"]["model"]["n_classes"] == 11


def test_identical_images_score_near_one_and_distorted_lower(val_images):
    for img in val_images:
        same = float(SCORE(np.stack([img, img]), img))
        assert 0.95 <= same <= 1.0, same  # the top class (1.0) is for identical patches only
        noisy = np.clip(img + 0.05 * np.random.default_rng(0).normal(size=img.shape), 0, 1).astype(np.float32)
        assert float(SCORE(np.stack([img, img]), noisy)) < same - 0.05


@pytest.mark.parametrize("kind", HELD_OUT_KINDS + ("noise", "blur"))
def test_monotone_in_distortion_strength_on_held_out_images(val_images, kind):
    """On validation images (never trained on), the mean score falls with the strength (the held-out JPEG-like type too)."""
    strengths = (0.0, 0.25, 0.5, 0.75, 1.0)
    f = jax.jit(jax.vmap(distort, in_axes=(0, 0, None, None)))
    keys = jax.random.split(jax.random.key(3), len(val_images))
    score = jax.jit(jax.vmap(lambda s, d: cnn_metric(jnp.stack([s, s]), d)))
    means = [float(jnp.mean(score(val_images, f(keys, val_images, KINDS.index(kind), u)))) for u in strengths]
    assert all(b < a for a, b in zip(means, means[1:])), means


def test_jit_compiles_once_and_vmap_equals_loop(val_images):
    from test_foundation_shape import count_compilations

    srcs = jnp.stack([val_images[:3], val_images[3:6]], 1)  # (3, 2, 32, 32)
    fused = jnp.mean(srcs, 1)
    SCORE(srcs[0], fused[0]).block_until_ready()
    with count_compilations() as n:
        SCORE(srcs[1], fused[1]).block_until_ready()
    assert n[0] == 0
    batched = jax.jit(jax.vmap(cnn_metric))(srcs, fused)
    loop = np.array([float(SCORE(s, f)) for s, f in zip(srcs, fused)])
    np.testing.assert_allclose(np.asarray(batched), loop, rtol=1e-5, atol=1e-6)  # float32 summation order
    # the fusion score is the mean over sources of the mean score maps
    maps = jax.jit(jax.vmap(cnn_metric_map, in_axes=(0, None)))(srcs[0], fused[0])
    assert maps.shape == (2, 16 - 7, 16 - 7)
    assert loop[0] == pytest.approx(float(np.mean(np.asarray(maps).mean((1, 2)))), rel=1e-5)


def test_differentiable_and_usable_as_a_training_loss(val_images):
    """1 - cnn_metric as a loss on the fused image: finite gradients and a lower loss after 3 gradient steps."""
    a, b = val_images[0], val_images[1]
    srcs = jnp.stack([a, b])

    def loss(f):
        return 1.0 - cnn_metric(srcs, f)

    import optax

    f = jnp.full_like(a, 0.5)
    opt = optax.adam(1e-2)  # as in notebook 06; a plain step of fixed size overshoots (the gradient scale varies)
    state = opt.init(f)
    step = jax.jit(jax.value_and_grad(loss))
    first, g = step(f)
    assert np.all(np.isfinite(np.asarray(g))) and float(jnp.abs(g).max()) > 0
    for _ in range(3):
        updates, state = opt.update(g, state)
        f = optax.apply_updates(f, updates)
        value, g = step(f)
        assert np.all(np.isfinite(np.asarray(g)))
    assert float(value) < float(first) - 1e-3


def test_bad_input_raises_fusion_input_error(val_images):
    img = val_images[0]
    with pytest.raises(FusionInputError, match=r"^metrics: cnn_metric needs images of at least 16 x 16"):
        jfusion.evaluate([img[:8, :8], img[:8, :8]], img[:8, :8], metrics=["cnn_metric"])
    bad = img.copy()
    bad[3, 3] = np.nan
    with pytest.raises(FusionInputError, match="^fused"):
        jfusion.evaluate([img, img], bad, metrics=["cnn_metric"])
    with pytest.raises(FusionInputError, match="^metrics: cnn_metric: no weights named 'nope'"):
        jfusion.evaluate([img, img], img, metrics=["cnn_metric"], options={"cnn_metric": {"weights": "nope"}})
    with pytest.raises(FusionInputError, match="unknown option 'levels'; valid options: weights"):
        jfusion.evaluate([img, img], img, metrics=["cnn_metric"], options={"cnn_metric": {"levels": 3}})
    # RGB goes through rgb2gray under evaluate (colour rule "gray")
    rgb = np.stack([img, img, img], -1)
    got = jfusion.evaluate([rgb, rgb], rgb, metrics=["cnn_metric"])["cnn_metric"]
    assert got == pytest.approx(float(SCORE(np.stack([img, img]), img)), abs=2e-3)  # 8-bit snapping of the grey


def test_patch_ssim_equals_skimage_and_labels():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(5)
    a = rng.random((16, 16)).astype(np.float32)
    b = np.clip(a + 0.1 * rng.normal(size=a.shape), 0, 1).astype(np.float32)
    ref = structural_similarity(a.astype(np.float64), b.astype(np.float64), data_range=1.0, gaussian_weights=True,
                                sigma=1.5, use_sample_covariance=False)
    assert float(patch_ssim(a, b)) == pytest.approx(ref, abs=1e-5)  # float32 vs float64
    assert float(patch_ssim(a, a)) == pytest.approx(1.0, abs=1e-6)
    lab = quantise_similarity(jnp.array([1.0, 0.999, 0.95, 0.5, -0.2]), jnp.array([True, False, False, False, False]), n_classes=11)
    assert lab.tolist() == [10, 9, 9, 5, 0]  # 1.0 only for identical pairs


def test_distortions_and_pairs():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.random((32, 32)), jnp.float32)
    dist, ssim = jax.jit(distort), jax.jit(patch_ssim)  # one compilation each: kind and strength are traced
    for kd in range(len(KINDS)):
        y0, y1 = dist(jax.random.key(0), x, kd, 0.1), dist(jax.random.key(0), x, kd, 0.9)
        assert y0.shape == x.shape and float(y0.min()) >= 0 and float(y0.max()) <= 1
        if KINDS[kd] in ("noise", "blur", "salt_pepper", "jpeg", "quantise"):
            c = slice(8, 24)
            assert float(ssim(x[c, c], y1[c, c])) < float(ssim(x[c, c], y0[c, c])), KINDS[kd]
    pool = rng.random((4, 40, 40)).astype(np.float32)
    b = jax.jit(lambda k: sample_metric_batch(k, pool, batch=64, n_classes=11))(jax.random.key(1))
    assert b["a"].shape == (64, 16, 16, 1) and b["label"].shape == (64,)
    same = np.asarray(b["kind"]) == -1
    assert np.all(np.asarray(b["label"])[same] == 10) and np.all(np.asarray(b["label"])[~same] <= 9)
    assert set(np.asarray(b["kind"])[~same].tolist()) <= set(range(len(TRAIN_KINDS)))  # never the held-out type
    held = sample_metric_batch(jax.random.key(2), pool, batch=16, n_classes=11, kinds=(KINDS.index("jpeg"),), identical_fraction=0.0)
    assert set(np.asarray(held["kind"]).tolist()) == {KINDS.index("jpeg")}


def test_split_is_fixed_disjoint_and_test_images_are_guarded(split):
    from jfusion.data.folder import image_paths

    again = natural_split(list(reversed(image_paths(data_path("natural")))))
    assert again == split
    with pytest.raises(protocol.ProtocolError):
        split.test_paths()
    with protocol.reading_test():
        test = set(split.test_paths())
    assert not test & set(split.train) and not test & set(split.validation) and not set(split.train) & set(split.validation)
    assert len(split.train) + len(split.validation) + len(test) == len(image_paths(data_path("natural")))


def test_training_smoke_and_resume(tmp_path):
    """A few steps of the registered recipe's training loop on 12 images; a second call resumes (no new steps)."""
    src = sorted(data_path("natural", "t91").glob("*.png"))[:12]
    folder = tmp_path / "imgs"
    folder.mkdir()
    for p in src:
        shutil.copy(p, folder / p.name)
    cfg = dataclasses.replace(CONFIG, steps=4, batch=8, val_pairs=16, validate_every=2, checkpoint_every=2, per_image=1,
                              crop=40, warmup=1, data=str(folder))
    model, result, data = train_metric(cfg, cfg.data, checkpoint_dir=tmp_path / "ckpt", progress=False)
    assert [h["step"] for h in result.history] == [1, 2, 3, 4]
    assert [v["step"] for v in result.validation] == [2, 4] and result.best_step in (2, 4)
    assert all(np.isfinite(v["val_loss"]) for v in result.validation)
    again, r2, _ = train_metric(cfg, cfg.data, checkpoint_dir=tmp_path / "ckpt", progress=False, data=data)
    assert r2.start_step == 4
    a = jax.tree.leaves(jax.tree.map(np.asarray, jax.tree.leaves(nnx_params(model))))
    b = jax.tree.leaves(jax.tree.map(np.asarray, jax.tree.leaves(nnx_params(again))))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def nnx_params(model):
    from flax import nnx

    return nnx.state(model, nnx.Param)


@pytest.mark.skipif(not FULL, reason="trains, ships and runs the final evaluation (fuses with six methods): minutes; JFUSION_FULL=1")
def test_train_and_evaluate_end_to_end(tmp_path):
    from jfusion.training.metric import train_and_evaluate

    cfg = dataclasses.replace(CONFIG, steps=20, batch=16, val_pairs=64, validate_every=10, checkpoint_every=10,
                              test_images=3, test_side=64, per_image=1, data=str(data_path("natural")))
    man = train_and_evaluate(cfg, tmp_path / "run", progress=False)
    assert man["scores"]["validation"]["pairs"] == 64 and man["test_read"]["sha256"] == man["sha256"]
    t = man["scores"]["test"]
    assert t["n_images"] == 3 and {"held_out_distortion", "training_distortions", "multi_focus"} <= set(t)
