"""Target-adaptive fine-tuning (PNN+, adapt=True) and the SAE's named detail injection."""

from __future__ import annotations

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
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
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
