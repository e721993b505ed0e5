"""ops.box_sum_valid (added for the metrics) against scipy.signal.correlate2d 'valid' with a ones kernel."""

import numpy as np
import pytest
from scipy.signal import correlate2d

from jfusion.ops import box_sum_valid


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 11, (5, 8), 32])
def test_box_sum_valid_matches_scipy(size):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (2, 40, 45))
    sh, sw = (size, size) if isinstance(size, int) else size
    ref = np.stack([correlate2d(v, np.ones((sh, sw)), mode="valid") for v in x])
    out = np.asarray(box_sum_valid(x.astype(np.float32), size))
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-5)  # float32 sums of up to 1024 terms
