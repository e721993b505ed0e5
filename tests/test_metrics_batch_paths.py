"""The fast paths of the metric driver: whole-batch preparation, shared histograms, stored filter passes.

References: the per-scene path (``prepare_fusion_inputs`` + each metric alone), ``ops`` filters and
the complex ``fft_filter`` these helpers replace. Tolerances are stated per assertion (float64).
"""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jfusion.metrics as M
from jfusion import FusionInputError
from jfusion.metrics import _common as C
from jfusion.metrics.information import level_histogram_metrics
from jfusion.metrics.perceptual import _csf_chen_blum, _csf_mannos_sakrison
from jfusion.ops import filter2d, separable_filter

E = importlib.import_module("jfusion.metrics.evaluate")
RNG = np.random.default_rng(11)


def _per_scene_layout(src, fu, colour, quantize):
    xs, fs = [], []
    for i in range(src.shape[0]):
        x, f, sbs = E.prepare_fusion_inputs(src[i], fu[i], colour=colour, quantize=quantize)
        xs.append(x)
        fs.append(f)
    x, f = np.stack(xs), np.stack(fs)
    x = x[:, None] if x.ndim == 4 else np.moveaxis(x, -1, 1)
    f = f[:, None] if f.ndim == 3 else np.moveaxis(f, -1, 1)
    return x, f, sbs


CASES = {
    "uint8 rgb": (RNG.integers(0, 256, (3, 2, 9, 11, 3), dtype=np.uint8), RNG.integers(0, 256, (3, 9, 11, 3), dtype=np.uint8)),
    "float 8-bit levels": (RNG.integers(0, 256, (3, 2, 9, 11, 3)) / 255.0, RNG.integers(0, 256, (3, 9, 11, 3)) / 255.0),
    "float continuous": (RNG.random((3, 3, 9, 11)), RNG.random((3, 9, 11))),
    "grey sources, rgb fused": (RNG.integers(0, 256, (2, 2, 9, 11), dtype=np.uint8), RNG.random((2, 9, 11, 3))),
    "rgb sources, grey fused": (RNG.random((2, 2, 9, 11, 3)), RNG.integers(0, 256, (2, 9, 11), dtype=np.uint8)),
    "uint16": (RNG.integers(0, 65536, (2, 2, 9, 11), dtype=np.uint16), RNG.integers(0, 65536, (2, 9, 11), dtype=np.uint16)),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("colour", ["vifb", "mefb", "gray"])
@pytest.mark.parametrize("quantize", [None, True, False])
def test_prepare_batch_equals_per_scene(case, colour, quantize):
    src, fu = CASES[case]
    x, f, sbs = E._prepare_batch(src, fu, colour, quantize)
    rx, rf, rsbs = _per_scene_layout(src, fu, colour, quantize)
    assert sbs == rsbs
    # exact: uint8 only for exact integer levels, otherwise float32 (default) of the float64 values;
    # grey sources next to a colour fused image travel once and are broadcast on the device
    want_x = rx[:, : x.shape[1]].astype(x.dtype).astype(np.float64)
    assert np.array_equal(x.astype(np.float64), want_x)
    assert x.shape[1] == rx.shape[1] or np.array_equal(rx, np.broadcast_to(rx[:, :1], rx.shape))
    assert np.array_equal(f.astype(np.float64), rf.astype(f.dtype).astype(np.float64))
    assert x.dtype == np.uint8 or x.dtype == np.float32


def test_prepare_batch_errors():
    good = RNG.random((2, 2, 9, 11))
    fu = RNG.random((2, 9, 11))
    bad = good.copy()
    bad[1, 0, 3, 3] = np.nan
    with pytest.raises(FusionInputError, match="NaN"):
        M.evaluate_batch(bad, fu, metrics=["en"])
    with pytest.raises(FusionInputError, match=r"\[0, 1\]"):
        M.evaluate_batch(good * 2, fu, metrics=["en"])
    with pytest.raises(FusionInputError, match="size"):
        M.evaluate_batch(good, fu[:, :8], metrics=["en"])
    with pytest.raises(FusionInputError, match="two or more"):
        M.evaluate_batch(good[:, :1], fu, metrics=["en"])
    with pytest.raises(FusionInputError, match="dtype"):
        M.evaluate_batch((good * 100).astype(np.int32), fu, metrics=["en"])
    with pytest.raises(FusionInputError, match="same N"):
        M.evaluate_batch(good, fu[:1], metrics=["en"])


def _levels_image(shape, lo, hi):
    return RNG.integers(lo, hi + 1, shape).astype(np.float64)


@pytest.mark.parametrize("ranges", [((0, 255), (0, 255)), ((30, 90), (5, 250)), ((100, 100), (7, 200)), ((0, 1), (0, 3))])
def test_level_histogram_metrics_equal_the_metrics(ranges):
    # Narrow and constant ranges exercise MI's min-max relabelling (step 255 / (max - min) >= 1).
    (alo, ahi), (flo, fhi) = ranges
    x = np.stack([_levels_image((40, 52), alo, ahi), _levels_image((40, 52), 0, 255)])
    f = _levels_image((40, 52), flo, fhi)
    with jax.enable_x64(True):
        ce, en, mi = jax.jit(level_histogram_metrics)(jnp.asarray(x), jnp.asarray(f))
        kw = dict(data_range=255.0)
        ref = (M.cross_entropy(x, f, **kw), M.entropy(x, f, **kw), M.mutual_information(x, f, **kw))
        mi2 = level_histogram_metrics(jnp.asarray(x), jnp.asarray(f), base=2.0)[2]
        ref2 = M.mutual_information(x, f, base=2.0, **kw)
    for got, want in zip((ce, en, mi, mi2), (*ref, ref2)):
        assert float(got) == pytest.approx(float(want), rel=1e-12, abs=1e-12)


def test_uint8_batch_shared_histograms_equal_float_path():
    src = RNG.integers(0, 256, (2, 2, 24, 30, 3), dtype=np.uint8)
    src[1, 0] = (src[1, 0] // 4 + 60).astype(np.uint8)  # a narrow-range source
    fu = RNG.integers(0, 256, (2, 24, 30, 3), dtype=np.uint8)
    names = ["ce", "en", "mi"]
    with jax.enable_x64(True):
        fast = M.evaluate_batch(src, fu, metrics=names)
        # quantize=False sends the same levels as float (uint8 / 255 * 255): the per-metric path
        slow = M.evaluate_batch(src, fu, metrics=names, quantize=False)
        one = M.evaluate(src[1], fu[1], metrics=names)
    for n in names:
        np.testing.assert_allclose(fast[n], slow[n], rtol=1e-12, err_msg=n)
        assert fast[n][1] == pytest.approx(one[n], rel=1e-12)


def test_filter_valid_equals_ops_separable():
    x = jnp.asarray(RNG.random((2, 3, 30, 41)) * 255)
    k = C.fspecial_gaussian1d(11, 1.5)
    with jax.enable_x64(True):
        x = jnp.asarray(np.asarray(x), jnp.float64)
        got = jax.jit(lambda v: C.filter_valid(v, k))(x)
        want = separable_filter(x, k, kernel_x=k, border="zero")[..., 5:-5, 5:-5]
        # same taps in the same order; XLA may contract multiply-adds differently under jit
        assert float(jnp.max(jnp.abs(got - want))) <= 1e-14 * float(jnp.max(jnp.abs(want)))
        g = np.exp(-(np.arange(-15, 16) ** 2) / 8.0)
        same = C.separable_same_zero(x, g * 0.5, k_x=g)
        ref = filter2d(x, np.outer(g * 0.5, g), border="zero")
        assert float(jnp.max(jnp.abs(same - ref))) <= 1e-12 * float(jnp.max(jnp.abs(ref)))


def test_materialize_is_a_stored_identity():
    k = C.fspecial_gaussian1d(11, 1.5)
    x = jnp.asarray(RNG.random((3, 40, 50)), jnp.float32)
    f = lambda v: jnp.sum(C.filter_valid(v, k) ** 2)  # noqa: E731
    hlo = jax.jit(f).lower(x).compile().as_text()
    hlo_v = jax.jit(jax.vmap(f)).lower(x).compile().as_text()
    # On a CPU the value passes through a conditional that survives XLA's simplification, under vmap
    # too (custom batching rule, not a select); other backends get the plain value (no conditional).
    on_cpu = jax.default_backend() == "cpu"
    assert ("conditional" in hlo) == on_cpu
    assert ("conditional" in hlo_v) == on_cpu
    assert np.array_equal(np.asarray(C.materialize(x)), np.asarray(x))
    # only on CPU: for other backends the lowering has no run-time predicate (no device-to-host read)
    lowered = {p: jax.jit(f).trace(x).lower(lowering_platforms=(p,)).as_text() for p in ("cpu", "cuda")}
    assert "stablehlo.compare" in lowered["cpu"] and "stablehlo.compare" not in lowered["cuda"]
    g = jax.grad(f)(x)
    g_ref = jax.grad(lambda v: jnp.sum(separable_filter(v, k, kernel_x=k, border="zero")[..., 5:-5, 5:-5] ** 2))(x)
    np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(jax.vmap(f)(x)), [float(f(v)) for v in x], rtol=1e-6)


@pytest.mark.parametrize("shape", [(30, 37), (30, 36), (31, 36)])
@pytest.mark.parametrize("csf", [_csf_chen_blum, _csf_mannos_sakrison])
def test_rfft_filter_equals_complex_fft_filter(shape, csf):
    with jax.enable_x64(True):
        x = jnp.asarray(RNG.random((2,) + shape) * 255)
        resp = csf(*shape)
        full = C.fft_filter(x, resp)
        real = C.rfft_filter(x, resp)
        scale = float(jnp.max(jnp.abs(full)))
        # the reference's complex result is real up to rounding on these grids (metrics_spec P13)
        assert float(jnp.max(jnp.abs(jnp.imag(full)))) <= 1e-13 * scale
        assert float(jnp.max(jnp.abs(real - jnp.real(full)))) <= 1e-13 * scale


def test_arctan_matches_numpy():
    rng = np.random.default_rng(5)
    v = np.concatenate(
        [rng.normal(0, 3, 20000), 10.0 ** rng.uniform(-10, 10, 20000) * rng.choice([-1, 1], 20000),
         [0.0, 0.66, -0.66, 2.414213562373095, 0.4142135623730950, 1.0, -1.0, 1e30, -1e30]]
    )
    with jax.enable_x64(True):
        got = np.asarray(jax.jit(C.arctan)(jnp.asarray(v)))
    ref = np.arctan(v)
    tiny = np.maximum(np.abs(ref), 1e-300)
    assert np.max(np.abs(got - ref) / tiny) <= 2.3e-16  # 1 ulp, as XLA's atan
    v32 = v.astype(np.float32)
    got32 = np.asarray(jax.jit(C.arctan)(jnp.asarray(v32))).astype(np.float64)
    ref32 = np.arctan(v32.astype(np.float64))
    assert np.max(np.abs(got32 - ref32) / np.maximum(np.abs(ref32), 1e-30)) <= 2.5e-7  # Cephes atanf, ~3 ulp


def _default_and_patched(monkeypatch, n_items: int, attr: str, value):
    """VIFB metrics of a random uint8 batch by the default driver, then with ``E.<attr>`` patched."""
    src = RNG.integers(0, 256, (n_items, 2, 40, 48, 3), dtype=np.uint8)
    fu = RNG.integers(0, 256, (n_items, 40, 48, 3), dtype=np.uint8)
    names = list(M.VIFB_METRICS)
    with jax.enable_x64(True):
        E._fusion_fn.cache_clear()
        default = M.evaluate_batch(src, fu, metrics=names)
        monkeypatch.setattr(E, attr, value)
        E._fusion_fn.cache_clear()
        patched = M.evaluate_batch(src, fu, metrics=names)
    E._fusion_fn.cache_clear()
    return names, default, patched


def test_vmapped_driver_equals_sequential(monkeypatch):
    # Accelerators get a vmapped program (E._sequential() is False off CPU); check it here on CPU.
    names, seq, vec = _default_and_patched(monkeypatch, 3, "_sequential", lambda: False)
    for n in names:
        np.testing.assert_allclose(vec[n], seq[n], rtol=1e-12, err_msg=n)


@pytest.mark.skipif(len(jax.local_devices()) < 2, reason="needs several local devices (CI sets 4 CPU devices)")
def test_batch_split_over_devices_equals_one_device(monkeypatch):
    # 5 items over the local devices: padding (repeat the last item) and trimming are exercised.
    names, split, one = _default_and_patched(monkeypatch, 5, "_devices", lambda: jax.local_devices()[:1])
    for n in names:
        assert split[n].shape == (5,)
        np.testing.assert_allclose(split[n], one[n], rtol=1e-12, err_msg=n)


def test_learned_metric_through_the_batch_driver(monkeypatch):
    """cnn_metric (weights loaded at trace time) in the batch program: the sequential map, the vmapped program
    (accelerators) and per-scene evaluate agree to float32 summation order (rel 1e-5); RGB goes through rgb2gray."""
    src = RNG.integers(0, 256, (3, 2, 32, 40, 3), dtype=np.uint8)
    fu = RNG.integers(0, 256, (3, 32, 40, 3), dtype=np.uint8)
    E._fusion_fn.cache_clear()
    seq = M.evaluate_batch(src, fu, metrics=["cnn_metric", "en"])
    one = [M.evaluate(src[i], fu[i], metrics=["cnn_metric"])["cnn_metric"] for i in range(3)]
    monkeypatch.setattr(E, "_sequential", lambda: False)
    E._fusion_fn.cache_clear()
    vec = M.evaluate_batch(src, fu, metrics=["cnn_metric", "en"])
    E._fusion_fn.cache_clear()
    assert seq["cnn_metric"].shape == (3,) and np.all((seq["cnn_metric"] >= 0) & (seq["cnn_metric"] <= 1))
    np.testing.assert_allclose(seq["cnn_metric"], one, rtol=1e-5)
    np.testing.assert_allclose(vec["cnn_metric"], seq["cnn_metric"], rtol=1e-5)
