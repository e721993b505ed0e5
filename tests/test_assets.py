"""The one asset format (jfusion.assets): every shipped asset's checksum and schema, write/read, refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from jfusion import assets
from jfusion.models.pansharpening import PNN

PACKAGE = Path(assets.__file__).resolve().parent
SHIPPED = sorted(p for p in PACKAGE.rglob("*.npz"))


def _manifest(**kw):
    return assets.new_manifest(model="toy", config={"width": 2}, data="random", command="pytest", steps=0, seed=0, **kw)


def test_every_learned_file_of_the_package_is_an_asset():
    # the shipped weights, PCA bases and dictionaries: one per registered preset, except the retrained ones that did
    # not ship (listed with their validation scores in weights/pansharpening/not_shipped.json)
    from jfusion.training import recipes

    presets = [k for r in recipes.list_recipes() for k in r.presets]
    dropped_file = PACKAGE / "weights" / "pansharpening" / "not_shipped.json"
    dropped = json.loads(dropped_file.read_text()) if dropped_file.exists() else {}
    assert sorted(str(p.relative_to(PACKAGE).with_suffix("")) for p in SHIPPED) == sorted(set(presets) - set(dropped))
    assert not list(PACKAGE.rglob("*.npy")) and not list(PACKAGE.rglob("manifest.json"))


@pytest.mark.parametrize("npz", SHIPPED, ids=[str(p.relative_to(PACKAGE)) for p in SHIPPED])
def test_shipped_asset_matches_its_manifest(npz):
    manifest = json.loads(npz.with_suffix(".json").read_text())
    assert set(assets.MANIFEST_KEYS) <= set(manifest), sorted(set(assets.MANIFEST_KEYS) - set(manifest))
    assert set(manifest["scores"]) >= {"validation", "test"}
    assert manifest["sha256"] == hashlib.sha256(npz.read_bytes()).hexdigest()
    with np.load(npz, allow_pickle=False) as z:  # numpy alone, nothing pickled
        assert z.files and all(z[k].dtype != object for k in z.files)


def test_write_read_round_trip(tmp_path):
    arrays = {"a/kernel": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, 2], np.int32)}
    path = assets.write_asset(tmp_path / "sub" / "toy", arrays, _manifest(validation={"acc": 0.5}))
    assert path == tmp_path / "sub" / "toy.npz" and (tmp_path / "sub" / "toy.json").exists()
    assert not [p for p in (tmp_path / "sub").iterdir() if p.suffix == ".tmp"]
    asset = assets.read_asset(tmp_path / "sub" / "toy.npz")
    assert set(asset.arrays) == set(arrays)
    for k, v in arrays.items():
        np.testing.assert_array_equal(asset.arrays[k], v)
        assert asset.arrays[k].dtype == v.dtype and not asset.arrays[k].flags.writeable
    with pytest.raises(TypeError):
        asset.arrays["c"] = np.zeros(1)  # type: ignore[index]
    assert asset.manifest["scores"] == {"validation": {"acc": 0.5}, "test": {}}
    assert asset.manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    updated = assets.update_manifest(path, {"scores": {"validation": {"acc": 0.5}, "test": {"q": 1.0}}})
    assert assets.read_asset(path).manifest == updated and updated["scores"]["test"] == {"q": 1.0}


def test_tampered_asset_is_refused(tmp_path):
    path = assets.write_asset(tmp_path / "toy", {"w": np.ones(4, np.float32)}, _manifest())
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(assets.AssetError, match=r"toy\.npz: sha256 .* does not match .* reinstall jfusion or retrain"):
        assets.read_asset(tmp_path / "toy")


def test_existing_asset_is_not_overwritten_without_force(tmp_path):
    assets.write_asset(tmp_path / "toy", {"w": np.ones(2)}, _manifest())
    with pytest.raises(assets.AssetError, match="exists; pass force=True"):
        assets.write_asset(tmp_path / "toy", {"w": np.zeros(2)}, _manifest())
    np.testing.assert_array_equal(assets.read_asset(tmp_path / "toy").arrays["w"], np.ones(2))
    assets.write_asset(tmp_path / "toy", {"w": np.zeros(2)}, _manifest(), force=True)
    np.testing.assert_array_equal(assets.read_asset(tmp_path / "toy").arrays["w"], np.zeros(2))


def test_manifest_schema_is_validated_on_write(tmp_path):
    with pytest.raises(assets.AssetError, match=r"lacks \['data', 'command'"):
        assets.write_asset(tmp_path / "toy", {"w": np.ones(2)}, {"model": "toy", "config": {}})
    bad = {**_manifest(), "scores": {"test": {}}}
    with pytest.raises(assets.AssetError, match="'scores' must be"):
        assets.write_asset(tmp_path / "toy", {"w": np.ones(2)}, bad)
    assert not list(tmp_path.iterdir())


def test_params_round_trip_through_an_asset(tmp_path):
    model = PNN(3, 2, features=(4, 3), kernels=(3, 3, 3), residual=False, rngs=nnx.Rngs(1))
    arrays = assets.params_to_arrays(nnx.state(model, nnx.Param))
    assert "conv1/kernel" in arrays and "conv3/bias" in arrays
    assets.write_asset(tmp_path / "pnn", arrays, _manifest())
    fresh = PNN(3, 2, features=(4, 3), kernels=(3, 3, 3), residual=False, rngs=nnx.Rngs(2))
    graphdef, params, rest = assets.split_with_arrays(fresh, assets.read_asset(tmp_path / "pnn").arrays)
    x = np.random.default_rng(0).random((1, 9, 9, 3), np.float32)
    np.testing.assert_array_equal(np.asarray(nnx.merge(graphdef, params, rest)(x)), np.asarray(model(x)))
    with pytest.raises(assets.AssetError, match=r"missing \['conv3/bias'\]"):
        assets.arrays_to_params({k: v for k, v in arrays.items() if k != "conv3/bias"}, like=nnx.state(fresh, nnx.Param))


def test_param_key_encodes_state_paths():
    from jax.tree_util import DictKey, GetAttrKey, SequenceKey

    assert assets.param_key((DictKey("conv1"), DictKey("kernel"), GetAttrKey("value"))) == "conv1/kernel"
    assert assets.param_key((DictKey("layers"), SequenceKey(2), DictKey("bias"))) == "layers/2/bias"
    assert assets.param_key(("conv1", "bias", ".value")) == "conv1/bias"
