"""Every fixed (non-learned) product asks for full float32 precision.

On a CPU, XLA computes float32 products exactly whatever the requested precision, so the tests
of the other files cannot see this. On an NVIDIA GPU since Ampere the default is TF32 (relative
error about 5e-4) and on a TPU bfloat16 passes. A session on an H200 found wavelet, colour, PCA
and model-head products off by up to 5e-3 against PyWavelets/OpenCV and "identical sources return
the source" broken at 1e-3. These tests read the traced program instead: every ``dot_general``
and ``conv_general_dilated`` on float32 operands must carry ``Precision.HIGHEST``, except those
issued by a Flax layer of a learned model (which keeps the backend default on purpose, see
``jfusion.ops.precision``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jfusion as jf
from jfusion.metrics import list_metrics
from jfusion.ops import precision
from jfusion.pansharpening import list_pansharpening_methods, mshs

LOW = (jnp.float32, jnp.complex64, jnp.bfloat16, jnp.float16)


def _is_highest(p) -> bool:
    if isinstance(p, tuple):
        return all(x == lax.Precision.HIGHEST for x in p)
    return p is not None and "F32_F32_F32" in str(p)


def _from_flax_layer(eqn) -> bool:
    # A learned model's layer (Flax's own, or jfusion.models' layers such as models/conv.py's
    # blocked-matmul Conv, a drop-in for nnx.Conv) keeps the backend's default precision by design.
    tb = eqn.source_info.traceback
    return tb is not None and any("/flax/" in f.file_name or "/jfusion/models/" in f.file_name for f in tb.frames)


def _where(eqn) -> str:
    tb = eqn.source_info.traceback
    frames = [f"{f.file_name.rsplit('jfusion/', 1)[-1]}:{f.line_num}" for f in (tb.frames if tb else ())
              if "/jfusion/" in f.file_name and "/tests/" not in f.file_name]
    return " <- ".join(frames[:2]) or "?"


def _walk(jaxpr, out: list) -> None:
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("dot_general", "conv_general_dilated"):
            low = any(v.aval.dtype in LOW for v in eqn.invars)
            if low and not _is_highest(eqn.params.get("precision")) and not _from_flax_layer(eqn):
                out.append(f"{eqn.primitive.name} at {_where(eqn)}")
        for v in eqn.params.values():
            for sub in v if isinstance(v, (tuple, list)) else (v,):
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    _walk(sub.jaxpr, out)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    _walk(sub, out)


def default_precision_products(fn, *args) -> list[str]:
    """The float32 products of ``fn(*args)`` that leave the precision to the backend."""
    out: list[str] = []
    _walk(jax.make_jaxpr(fn)(*args).jaxpr, out)
    return sorted(set(out))


def test_the_walker_sees_default_and_full_precision():
    a = jnp.ones((4, 4), jnp.float32)
    assert default_precision_products(lambda x: x @ x, a) == ["dot_general at ?"]
    assert default_precision_products(lambda x: precision.matmul(x, x), a) == []
    assert default_precision_products(lambda x: precision.einsum("ij,jk->ik", x, x), a) == []
    # inside a nested jit and a loop too
    nested = jax.jit(lambda x: lax.fori_loop(0, 2, lambda _, y: y @ x, x))
    assert len(default_precision_products(nested, a)) == 1
    # integer products are exact on every backend: not reported
    assert default_precision_products(lambda x: x @ x, jnp.ones((2, 2), jnp.int32)) == []


def test_full_precision_helpers_compute_the_product(rng):
    a = rng.standard_normal((3, 5, 4)).astype(np.float32)
    b = rng.standard_normal((4, 2)).astype(np.float32)
    np.testing.assert_allclose(precision.matmul(a, b), a @ b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(precision.dot(a[0, 0], b[:, 0]), a[0, 0] @ b[:, 0], rtol=1e-5)
    np.testing.assert_allclose(precision.einsum("nij,jk->nik", a, b), a @ b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("colour", [False, True], ids=["grey", "colour"])
@pytest.mark.parametrize("name", [m.name for m in jf.methods.list_methods()])
def test_fusion_methods_ask_for_full_precision(name, colour, rng):
    info = jf.methods.get_info(name)
    if not info.has_weights:
        pytest.skip(f"{name}: no shipped weights ({info.weights}); tests/test_hdr_deep.py walks it with a test asset")
    n = max(2, info.min_sources)
    shape = (n, 64, 64, 3) if colour else (n, 64, 64)
    x = jnp.asarray(rng.random(shape), jnp.float32)
    opts = {"max_iter": 2} if name.startswith("csr") else {}
    fn = jf.get_method(name)
    assert default_precision_products(lambda s: fn(s, **opts), x) == []


@pytest.mark.parametrize("name", [m.name for m in list_pansharpening_methods() if m.family != "mshs"])
def test_pansharpening_methods_ask_for_full_precision(name, rng):
    from jfusion.pansharpening import get_info, get_pansharpening_method

    ms = jnp.asarray(rng.random((16, 16, 4)), jnp.float32)
    pan = jnp.asarray(rng.random((64, 64)), jnp.float32)
    fn = get_pansharpening_method(name)
    opts = {"sensor": "IKONOS"} if get_info(name).learned else {}  # shipped 4-band weights
    assert default_precision_products(lambda m, p: fn(m, p, ratio=4, **opts), ms, pan) == []


def test_mshs_components_ask_for_full_precision(rng):
    hs = rng.random((8, 8, 12)).astype(np.float32)
    pca = mshs.fit_pca(hs, n_components=3)
    z = mshs.to_components(jnp.asarray(hs), pca)
    assert default_precision_products(lambda h: mshs.to_components(h, pca), jnp.asarray(hs)) == []
    assert default_precision_products(lambda c: mshs.from_components(c, pca), z) == []


def test_metrics_ask_for_full_precision(rng):
    def arr(*shape):
        return jnp.asarray(rng.random(shape), jnp.float32)

    args = {
        "fusion": {"sources": arr(2, 192, 192), "fused": arr(192, 192)},
        "remote": {"reference": arr(64, 64, 4), "fused": arr(64, 64, 4)},
        # the PST convention: the MS interpolated to the fused size
        "remote_noref": {"ms": arr(64, 64, 4), "pan": arr(64, 64), "fused": arr(64, 64, 4)},
    }
    found = {}
    for info in list_metrics():
        a = args[info.kind]
        bad = default_precision_products(lambda *xs, fn=info.fn: fn(*xs), *[a[k] for k in info.inputs])
        if bad:
            found[info.name] = bad
    assert found == {}
