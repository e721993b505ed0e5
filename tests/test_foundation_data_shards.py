"""Synthetic focus-pair shards: deterministic, complete, and refused over existing shards."""

import jax
import numpy as np
import pytest

from jfusion.data import read_shards, write_focus_shards


def test_shards_roundtrip_and_determinism(tmp_path, rng):
    pool = rng.random((3, 48, 48)).astype(np.float32)
    key = jax.random.key(1)
    paths = write_focus_shards(key, pool, tmp_path / "s", pairs=10, shard_size=4)
    assert [p.name for p in paths] == ["focus-00000.npz", "focus-00001.npz", "focus-00002.npz"]
    shards = list(read_shards(tmp_path / "s"))
    assert [len(s["label"]) for s in shards] == [4, 4, 2]
    assert shards[0]["a"].shape == (4, 16, 16, 1) and shards[0]["label"].dtype == np.int32
    again = write_focus_shards(key, pool, tmp_path / "t", pairs=10, shard_size=4)
    for p, q in zip(paths, again):
        with np.load(p) as x, np.load(q) as y:
            np.testing.assert_array_equal(x["a"], y["a"])
    # labels say which source is sharp: the sharp side has more high-frequency energy
    s = np.concatenate([sh["a"] for sh in shards]), np.concatenate([sh["b"] for sh in shards])
    lab = np.concatenate([sh["label"] for sh in shards])
    energy = [np.abs(np.diff(x[..., 0], axis=1)).mean(axis=(1, 2)) for x in s]
    assert np.all((energy[0] >= energy[1]) == (lab == 1))
    with pytest.raises(FileExistsError):
        write_focus_shards(key, pool, tmp_path / "s", pairs=2)
