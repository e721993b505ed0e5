"""Convolutional dictionary learning vs sporco, OMP vs scikit-learn, the shipped dictionary."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jfusion.sparse import dictlearn
from jfusion.sparse.dictionary import dct_dictionary, dictionary_manifest, load_dictionary, shipped_dictionaries
from jfusion.sparse.omp import omp_batch

cbpdndl = pytest.importorskip("sporco.dictlrn.cbpdndl")
sp_signal = pytest.importorskip("sporco.signal")


def _training_set(rng, k=3, n=32):
    s = rng.standard_normal((n, n, k))
    s = np.cumsum(np.cumsum(s, axis=0), axis=1) / 10.0
    _, sh = sp_signal.tikhonov_filter(s, 5.0, 16)
    return sh


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
def test_dictionary_learning_matches_sporco_cns_trajectory(rng, x64):
    sh = _training_set(rng)
    d0 = rng.standard_normal((5, 5, 8))
    dt = np.float64 if x64 else np.float32
    lmbda, n_iter = 0.1, 30
    opt = cbpdndl.ConvBPDNDictLearn.Options({"Verbose": False, "MaxMainIter": n_iter}, dmethod="cns")
    ref = cbpdndl.ConvBPDNDictLearn(d0.astype(dt), sh.astype(dt), lmbda, opt, dmethod="cns")
    ref.solve()
    obj_ref = np.array([it.ObjFun for it in ref.itstat])
    with jax.enable_x64(x64):
        imgs = jnp.asarray(np.moveaxis(sh, -1, 0).astype(dt))
        st = dictlearn.init(d0.astype(dt), imgs, lmbda)
        st, hist = dictlearn.learn(st, imgs, lmbda, num_iter=n_iter, size=(5, 5))
        obj = np.asarray(hist.objective)
        d = np.asarray(jnp.transpose(st.g[:, :5, :5], (1, 2, 0)))
    # float64: the same iterates (measured 1e-15); float32: rounding only (measured 4e-7).
    tol = 1e-10 if x64 else 1e-4
    assert np.max(np.abs(obj - obj_ref) / obj_ref) < tol
    np.testing.assert_allclose(d, np.squeeze(ref.getdict()), atol=100 * tol)
    # The objective decreases over the run.
    assert obj[-1] < 0.6 * obj[0]


def test_learn_dictionary_unit_norm_and_decreasing(rng):
    imgs = np.moveaxis(_training_set(rng, k=2, n=24), -1, 0).astype(np.float32)
    d, hist = dictlearn.learn_dictionary(jax.random.key(0), imgs, num_filters=6, filter_size=4, num_iter=25)
    d = np.asarray(d)
    assert d.shape == (4, 4, 6)
    np.testing.assert_allclose(np.sqrt(np.sum(d**2, axis=(0, 1))), 1.0, rtol=1e-5)
    obj = np.asarray(hist.objective)
    assert obj[-1] < obj[0] and np.all(np.isfinite(obj))


@pytest.mark.parametrize("mode", ["n_nonzero", "tol"])
def test_omp_matches_sklearn(rng, mode):
    from sklearn.linear_model import orthogonal_mp

    d = rng.standard_normal((32, 64))
    d /= np.linalg.norm(d, axis=0)
    x = rng.standard_normal((32, 40))
    if mode == "n_nonzero":
        ref = orthogonal_mp(d, x, n_nonzero_coefs=6)
        kw = {"max_atoms": 6}
    else:
        ref = orthogonal_mp(d, x, tol=4.0)
        kw = {"max_atoms": 32, "tol": 4.0}
    with jax.enable_x64(True):
        a = np.asarray(omp_batch(d, x.T, **kw)).T
    # float64: same supports and coefficients (measured ~1e-14).
    np.testing.assert_array_equal(a != 0, ref != 0)
    np.testing.assert_allclose(a, ref, atol=1e-10)
    # float32, moderate sparsity: same support, coefficients to float32 rounding (measured 1.4e-6).
    if mode == "n_nonzero":
        a32 = np.asarray(omp_batch(d.astype(np.float32), x.T.astype(np.float32), **kw)).T
        np.testing.assert_allclose(a32, ref, atol=1e-4)


def test_dct_dictionary():
    d = dct_dictionary(patch=8, atoms=256)
    assert d.shape == (64, 256)
    np.testing.assert_allclose(np.linalg.norm(d, axis=0), 1.0, rtol=1e-5)
    assert np.linalg.matrix_rank(d) == 64


def test_shipped_dictionary_and_manifest():
    assert "csr32" in shipped_dictionaries(), "shipped dictionary csr32 missing from the package"
    d = load_dictionary(name_or_path="csr32")
    assert d.shape == (8, 8, 32)
    np.testing.assert_allclose(np.sqrt(np.sum(d.astype(np.float64) ** 2, axis=(0, 1))), 1.0, rtol=1e-4)
    m = dictionary_manifest(name="csr32")
    assert m["objective_final"] < m["objective_first"]
    for key in ("seed", "iterations", "lmbda", "command", "data"):
        assert key in m


def test_train_dictionary_command(tmp_path):
    from typer.testing import CliRunner

    from conftest import data_path  # noqa: E402
    from jfusion.cli import app

    natural = data_path("natural")
    res = CliRunner().invoke(app, [
        "train", "dictionary", "--data", str(natural), "--out", str(tmp_path), "--name", "tiny", "--num-filters", "4",
        "--filter-size", "4", "--iterations", "5", "--num-images", "2", "--crop", "32",
    ])
    assert res.exit_code == 0, res.output
    from jfusion.assets import read_asset

    asset = read_asset(tmp_path / "tiny")
    d, m = asset.arrays["dictionary"], asset.manifest
    assert d.shape == (4, 4, 4)
    assert m["iterations"] == 5 and m["shape"] == [4, 4, 4] and len(m["data"]["files"]) == 2
