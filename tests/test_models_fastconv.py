"""jfusion.models.conv: the CPU convolution path (one-row padding of unpadded layers, 3-D folded into 2-D) equals
lax / nnx.Conv (values and gradients), and the shipped weights give the same method outputs through it as through
XLA's plain convolution."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

import jfusion
from jfusion.models import conv as fastconv
from jfusion.models.conv import Conv, conv
from jfusion.pansharpening import learned, mshs  # noqa: F401  (learned: imported for its registrations)

# float32 products of up to ~600 terms summed in another order: relative to the output's scale.
RTOL = 1e-5


def _ref(x, w, padding):
    nd = w.ndim - 2
    sp = "DHW"[-nd:] if nd <= 3 else None
    dn = lax.conv_dimension_numbers(x.shape, w.shape, (f"N{sp}C", f"{sp}IO", f"N{sp}C"))
    return lax.conv_general_dilated(x, w, (1,) * nd, padding, dimension_numbers=dn, precision=lax.Precision.HIGHEST)


def _close(a, b, rtol=RTOL):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    err = np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)
    assert err <= rtol, f"relative max error {err:.2e} > {rtol:.0e}"


CASES = [
    ((2, 23, 19, 3), (5, 3), "VALID"),
    ((2, 23, 19, 3), (4, 4), "SAME"),  # even kernel: lax puts the extra row/column high
    ((1, 30, 30, 7), (9, 9), "VALID"),
    ((3, 16, 16, 4), (3, 3), [(2, 0), (1, 3)]),
    ((2, 10, 9, 7, 1), (5, 5, 3), "SAME"),  # the 3-D CNN's first layer
    ((4, 12, 12, 6), (1, 1), "VALID"),
    ((2, 9, 8, 5, 2), (3, 3, 3), "VALID"),  # 3-D, unpadded: folded, depth shrinks
    ((1, 8, 8, 4, 3), (3, 1, 2), [(0, 1), (2, 0), (1, 0)]),  # 3-D, even depth tap, one-sided padding
    ((2, 20, 6), (5,), "VALID"),  # 1-D
    ((1, 6, 6, 40, 1), (3, 3, 3), "SAME"),  # depth over MAX_FOLD_DEPTH: XLA's 3-D convolution
]


@pytest.mark.parametrize("shape,ks,padding", CASES)
def test_conv_and_gradients_equal_lax(shape, ks, padding):
    rng = np.random.default_rng(len(shape) + sum(ks))
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    w = jnp.asarray(rng.standard_normal((*ks, shape[-1], 5)), jnp.float32)
    f = jax.jit(lambda x, w: conv(x, w, padding=padding, precision="highest"))
    _close(f(x, w), _ref(x, w, padding))

    def loss(fn):
        return lambda x, w: jnp.sum(jnp.sin(fn(x, w)))

    g = jax.jit(jax.grad(loss(lambda x, w: conv(x, w, padding=padding, precision="highest")), (0, 1)))(x, w)
    g_ref = jax.grad(loss(lambda x, w: _ref(x, w, padding)), (0, 1))(x, w)
    for a, b in zip(g, g_ref):
        _close(a, b)


FFT_CASES = [  # (input, kernel size, padding, out channels): all pass fft_kernel_gradient_pays
    ((48, 16, 16, 4), (5, 5), "VALID", 16),
    ((128, 12, 10, 8), (3, 3), "SAME", 16),
    ((96, 12, 12, 8), (4, 4), "SAME", 8),  # even kernel, the extra row/column high
    ((64, 14, 11, 8), (3, 5), [(2, 0), (1, 3)], 8),  # non-square kernel, one-sided padding
]


def _pays(shape, ks, padding, cout):
    pads = fastconv._explicit_padding(padding, ks)
    padded = [s + lo + hi for s, (lo, hi) in zip(shape[1:3], pads)]
    return fastconv.fft_kernel_gradient_pays(batch=shape[0], padded=padded, kernel=ks, cin=shape[-1], cout=cout)


@pytest.mark.parametrize("shape,ks,padding,cout", FFT_CASES)
def test_frequency_domain_kernel_gradient_equals_lax(shape, ks, padding, cout):
    # The kernel gradient of conv's custom VJP is a circular correlation at the padded input's size, where no
    # lag wraps: equal to XLA's direct one to float32 rounding (RTOL of the largest entry).
    assert _pays(shape, ks, padding, cout)
    rng = np.random.default_rng(sum(ks) + cout)
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    w = jnp.asarray(rng.standard_normal((*ks, shape[-1], cout)) / np.sqrt(np.prod(ks) * shape[-1]), jnp.float32)

    def loss(fn):
        return lambda x, w: jnp.sum(jnp.sin(fn(x, w)))

    step = jax.jit(jax.grad(loss(lambda x, w: conv(x, w, padding=padding)), (0, 1)))
    assert "fft" in step.lower(x, w).as_text().lower()  # the frequency-domain path was taken
    g = step(x, w)
    g_ref = jax.grad(loss(lambda x, w: _ref(x, w, padding)), (0, 1))(x, w)
    for a, b in zip(g, g_ref):
        _close(a, b)
    # the direct kernel_gradient_fft call on the layer's input and an output gradient
    dy = jnp.asarray(rng.standard_normal(_ref(x, w, padding).shape), jnp.float32)
    pads = fastconv._explicit_padding(padding, ks)
    dk_ref = jax.vjp(lambda w: _ref(x, w, padding), w)[1](dy)[0]
    _close(fastconv.kernel_gradient_fft(x, dy, ks, pads), dk_ref)


def test_kernel_gradient_rule_leaves_small_batches_to_xla():
    # batch 16 with 9 input channels and a 5x5 kernel: measured slower in the frequency domain (module docstring)
    assert not fastconv.fft_kernel_gradient_pays(batch=16, padded=(24, 24), kernel=(5, 5), cin=9, cout=144)
    assert not fastconv.fft_kernel_gradient_pays(batch=256, padded=(10, 10), kernel=(1, 1), cin=64, cout=64)
    x = jnp.ones((2, 12, 12, 3))
    w = jnp.ones((3, 3, 3, 4))
    step = jax.jit(jax.grad(lambda w: jnp.sum(conv(x, w, padding="SAME")) ** 2))
    assert "fft" not in step.lower(w).as_text().lower()


def test_second_order_and_forward_mode_through_the_custom_kernel_gradient():
    shape, ks, padding, cout = FFT_CASES[0]
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    w = jnp.asarray(rng.standard_normal((*ks, shape[-1], cout)) * 0.1, jnp.float32)
    v = jnp.asarray(rng.standard_normal(w.shape), jnp.float32)

    def hvp(fn):  # Hessian-vector product by reverse over reverse
        g = jax.grad(lambda w: jnp.sum(jnp.sin(fn(x, w))))
        return jax.grad(lambda w: jnp.vdot(g(w), v))(w)

    _close(jax.jit(lambda: hvp(lambda x, w: conv(x, w, padding=padding)))(), hvp(lambda x, w: _ref(x, w, padding)), 1e-4)
    # forward mode: the custom rule is reverse-only, so jvp runs with it off
    with fastconv.xla_kernel_gradient():
        t = jax.jvp(lambda w: conv(x, w, padding=padding), (w,), (v,))[1]
    _close(t, jax.jvp(lambda w: _ref(x, w, padding), (w,), (v,))[1])
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda w: conv(x, w, padding=padding), (w,), (v,))


def test_unpadded_conv_is_computed_with_one_padded_row():
    # XLA:CPU's emitter for a convolution without padding is 3-7x slower (module docstring): the program
    # must carry the one-row padding, and no unpadded convolution.
    x, w = jnp.zeros((1, 20, 20, 7)), jnp.zeros((9, 9, 7, 4))
    hlo = jax.jit(lambda x, w: conv(x, w, padding="VALID")).lower(x, w).as_text()
    convs = [line for line in hlo.splitlines() if "stablehlo.convolution" in line]
    assert len(convs) == 1 and "pad = [[0, 1], [0, 0]]" in convs[0], convs


def test_3d_conv_is_folded_into_a_2d_one():
    x, w = jnp.zeros((1, 12, 12, 9, 1)), jnp.zeros((5, 5, 3, 1, 16))
    hlo = jax.jit(lambda x, w: conv(x, w, padding="SAME")).lower(x, w).as_text()
    convs = [line for line in hlo.splitlines() if "stablehlo.convolution" in line]
    assert len(convs) == 1 and "[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]" in convs[0], convs
    assert "tensor<5x5x9x144xf32>" in convs[0]  # (5, 5, depth 9 x 1 channel, depth 9 x 16 features)


def test_conv_rejects_unsupported_padding_and_small_inputs():
    x = jnp.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match="padding"):
        conv(x, jnp.zeros((3, 3, 1, 1)), padding="CIRCULAR")
    with pytest.raises(ValueError, match="smaller than the kernel"):
        conv(x, jnp.zeros((5, 5, 1, 1)))


@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_conv_module_matches_nnx_conv_with_the_same_parameters(padding):
    fast = Conv(3, 8, (5, 5), padding=padding, rngs=nnx.Rngs(0))
    ref = nnx.Conv(3, 8, (5, 5), padding=padding, rngs=nnx.Rngs(0))
    assert jax.tree.map(jnp.shape, nnx.state(fast, nnx.Param)) == jax.tree.map(jnp.shape, nnx.state(ref, nnx.Param))
    nnx.update(ref, nnx.state(fast, nnx.Param))
    x = jnp.asarray(np.random.default_rng(1).random((2, 17, 13, 3)), jnp.float32)
    _close(fast(x), ref(x))
    _close(fast(x[0]), ref(x[0]))  # unbatched input


def test_conv_module_falls_back_to_nnx_for_strides_and_dilation():
    for kw in ({"strides": 2}, {"kernel_dilation": 2}, {"padding": "CIRCULAR"}):
        layer = Conv(2, 3, (3, 3), rngs=nnx.Rngs(0), **kw)
        assert not fastconv.fast_path_applies(layer)
        ref = nnx.Conv(2, 3, (3, 3), rngs=nnx.Rngs(0), **kw)
        x = jnp.ones((1, 9, 9, 2))
        np.testing.assert_array_equal(layer(x), ref(x))


def _on_plain_xla_conv(monkeypatch, fn):
    """``fn()`` with every model on XLA's plain convolution, as on a non-CPU backend (fresh traces)."""
    monkeypatch.setattr(fastconv, "enabled", lambda: False)
    jax.clear_caches()
    try:
        return np.asarray(fn())
    finally:
        monkeypatch.undo()
        jax.clear_caches()


@pytest.mark.parametrize("name", ["pnn", "pnn-residual", "drpnn", "srcnn-gs"])
def test_shipped_pansharpening_weights_give_the_same_outputs(name, monkeypatch):
    rng = np.random.default_rng(0)
    ms = (rng.random((24, 24, 4)) * 1500 + 100).astype(np.float32)
    pan = (rng.random((96, 96)) * 1500 + 100).astype(np.float32)

    def run():
        return jfusion.pansharpen(ms, pan, method=name, sensor="IKONOS", bit_depth=11)

    fast = np.asarray(run())
    _close(fast, _on_plain_xla_conv(monkeypatch, run))


def test_shipped_cnn3d_and_focus_cnn_give_the_same_outputs(monkeypatch):
    scene = sorted(mshs.shipped_cnn3d())[0]
    model, _, _ = mshs.load_cnn3d(scene)
    vol = jnp.asarray(np.random.default_rng(2).random((1, 20, 20, 9, 1)), jnp.float32)
    f = jax.jit(lambda v: model(v))
    _close(f(vol), _on_plain_xla_conv(monkeypatch, lambda: jax.jit(lambda v: model(v))(vol)))

    rng = np.random.default_rng(3)
    a = rng.random((64, 68)).astype(np.float32)
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    src = np.stack([a, b])
    for method in ("cnn-focus", "cnn-focus-multiscale"):
        out = np.asarray(jfusion.fuse(src, method=method))
        _close(out, _on_plain_xla_conv(monkeypatch, lambda: jfusion.fuse(src, method=method)))
