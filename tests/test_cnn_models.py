"""WeightNet (Liu 2017 siamese CNN, pseudo-siamese, 2-channel; fc256 / direct heads; K classes)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jfusion.models import WeightNet, WeightNetConfig, class_weights

SMALL = dict(widths=(4, 8, 8), hidden=8)
ARCHS = [(a, h) for a in ("siamese", "pseudo", "2ch") for h in ("fc256", "direct")]


def _model(arch="siamese", head="fc256", n_classes=2, **kw):
    cfg = WeightNetConfig(arch=arch, head=head, n_classes=n_classes, **{**SMALL, **kw})
    return WeightNet(config=cfg, rngs=nnx.Rngs(0))


def _imgs(shape, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.uniform(k1, shape), jax.random.uniform(k2, shape)


def test_liu_architecture_shapes():
    """Full-size Liu 2017 net: 3x3 convs 64/128/256, one pool, fc 8*8*512 -> 256 -> 2."""
    m = WeightNet(config=WeightNetConfig(), rngs=nnx.Rngs(0))
    assert m.branch_a.conv1.kernel.shape == (3, 3, 1, 64)
    assert m.branch_a.conv2.kernel.shape == (3, 3, 64, 128)
    assert m.branch_a.conv3.kernel.shape == (3, 3, 128, 256)
    assert m.fc1.kernel.shape == (8 * 8 * 512, 256)
    assert m.out.kernel.shape == (256, 2)
    a, b = _imgs((3, 16, 16, 1))
    assert m.features(a, b).shape == (3, 8, 8, 512)
    assert m(a, b).shape == (3, 2)
    d = WeightNet(config=WeightNetConfig(head="direct"), rngs=nnx.Rngs(0))
    assert d.out.kernel.shape == (8 * 8 * 512, 2)
    assert not hasattr(d, "fc1")


@pytest.mark.parametrize("arch,head", ARCHS)
def test_shapes_all_architectures(arch, head):
    m = _model(arch, head, n_classes=5)
    a, b = _imgs((2, 16, 16, 1))
    assert m(a, b).shape == (2, 5)
    a, b = _imgs((2, 41, 36, 1))
    assert m.dense_logits(a, b).shape == (2, 21 - 7, 18 - 7, 5)  # (ceil(H/2)-7, ceil(W/2)-7)
    w = m.dense_weight(a, b)
    assert w.shape == (2, 14, 11) and bool(jnp.all((w >= 0) & (w <= 1)))
    if arch == "pseudo":
        assert m.branch_a.conv1.kernel is not m.branch_b.conv1.kernel
    if arch == "2ch":
        assert m.branch_a.conv1.kernel.shape[2] == 2


@pytest.mark.parametrize("arch,head", ARCHS)
def test_dense_equals_patchwise_head(arch, head):
    """FC -> conv: dense logit (j, i) == the fc head on the 8x8 feature window of the patch at (2j, 2i).

    Exact up to float32 rounding (tolerance 1e-5 relative). A 16x16 input gives a 1x1 dense
    map equal to the patch classifier.
    """
    m = _model(arch, head, n_classes=3)
    a, b = _imgs((1, 38, 44, 1), seed=1)
    dense = np.asarray(m.dense_logits(a, b))
    f = m.features(a, b)
    for j, i in [(0, 0), (3, 5), (11, 14), (7, 2)]:
        window = f[:, j : j + 8, i : i + 8, :].reshape(1, -1)
        np.testing.assert_allclose(dense[0, j, i], np.asarray(m._head(window))[0], rtol=1e-5, atol=1e-5)
    p_a, p_b = a[:, 6:22, 10:26], b[:, 6:22, 10:26]
    np.testing.assert_allclose(
        np.asarray(m.dense_logits(p_a, p_b))[:, 0, 0], np.asarray(m(p_a, p_b)), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("arch,head", [(a, h) for a, h in ARCHS if a != "2ch"])
def test_dense_against_reference_equals_each_pair(arch, head):
    """One pass scoring (ref, others[m]) with ref's branch and fc half computed once == dense_logits of each pair.

    The first fc layer split as W_a f_a + W_b f_b only reorders a sum: float32 rounding (1e-5 relative).
    reference_forward (no hidden bias / ReLU) goes through the same split.
    """
    for ref_fwd in (False, True):
        m = _model(arch, head, n_classes=3, reference_forward=ref_fwd)
        ref, _ = _imgs((1, 37, 42, 1), seed=3)
        others, _ = _imgs((3, 37, 42, 1), seed=4)
        got = np.asarray(m.dense_logits_against(ref, others))
        want = np.stack([np.asarray(m.dense_logits(ref, others[i : i + 1]))[0] for i in range(3)])
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_allclose(np.asarray(m.dense_weight_against(ref[..., 0], others[..., 0])),
                                   np.asarray(m.dense_weight(jnp.broadcast_to(ref, others.shape), others)), atol=1e-5)


def test_dense_against_refuses_two_channel_nets():
    m = _model("2ch", "fc256")
    a, b = _imgs((1, 16, 16, 1))
    with pytest.raises(ValueError, match="2ch"):
        m.dense_logits_against(a, b)


def test_dense_matches_patch_evaluation_in_the_interior():
    """For a patch far from the image border, patch-wise evaluation of the *same features* is exact;
    evaluating the cropped patch alone differs only through the 'same' zero padding at its border
    (accepted behaviour of the reference, spec 1.5), so a model with 1x1 convs agrees exactly."""
    cfg = WeightNetConfig(widths=(4, 8, 8), hidden=8)
    m = WeightNet(config=cfg, rngs=nnx.Rngs(3))
    # make every 3x3 kernel a centre tap: then no receptive field crosses the patch border
    for conv in (m.branch_a.conv1, m.branch_a.conv2, m.branch_a.conv3):
        k = np.zeros(conv.kernel.shape, np.float32)
        k[1, 1] = np.asarray(conv.kernel[...])[1, 1]
        conv.kernel[...] = jnp.asarray(k)
    a, b = _imgs((1, 48, 48, 1), seed=2)
    dense = np.asarray(m.dense_logits(a, b))[0]
    for j, i in [(4, 4), (10, 3), (0, 16)]:
        pa, pb = a[:, 2 * j : 2 * j + 16, 2 * i : 2 * i + 16], b[:, 2 * j : 2 * j + 16, 2 * i : 2 * i + 16]
        np.testing.assert_allclose(dense[j, i], np.asarray(m(pa, pb))[0], rtol=1e-5, atol=1e-5)


def test_jit_and_vmap_consistency():
    m = _model("siamese", "fc256")
    graphdef, state = nnx.split(m)
    a, b = _imgs((3, 2, 24, 24, 1))  # 3 scenes of 2 images

    def dense(state, x, y):
        return nnx.merge(graphdef, state).dense_weight(x, y)

    eager = np.stack([np.asarray(m.dense_weight(a[i], b[i])) for i in range(3)])
    batched = jax.jit(jax.vmap(dense, in_axes=(None, 0, 0)))(state, a, b)
    np.testing.assert_allclose(np.asarray(batched), eager, rtol=1e-5, atol=1e-6)


def test_siamese_swap_symmetry_of_the_weight():
    """Swapping the inputs of a siamese K=2 net swaps the branch order; a net whose head is
    antisymmetric in the two halves gives w(b, a) = 1 - w(a, b)."""
    m = _model("siamese", "direct")
    k = np.array(m.out.kernel[...]).reshape(8, 8, 16, 2)
    k[:, :, 8:, :] = k[:, :, :8, ::-1]  # half for b = half for a with the classes swapped
    m.out.kernel[...] = jnp.asarray(k.reshape(-1, 2))
    m.out.bias[...] = jnp.zeros(2)
    a, b = _imgs((1, 30, 30, 1))
    np.testing.assert_allclose(np.asarray(m.dense_weight(b, a)), 1 - np.asarray(m.dense_weight(a, b)), atol=1e-5)


def test_class_weights_and_config_validation():
    np.testing.assert_allclose(np.asarray(class_weights(2)), [0, 1])
    np.testing.assert_allclose(np.asarray(class_weights(5)), [0, 0.25, 0.5, 0.75, 1])
    with pytest.raises(ValueError):
        WeightNetConfig(arch="triplet")
    with pytest.raises(ValueError):
        WeightNetConfig(n_classes=1)
    cfg = WeightNetConfig(arch="2ch", n_classes=4)
    assert WeightNetConfig.from_dict(cfg.to_dict()) == cfg
