"""The evaluation protocol of jfusion's learned remote-sensing models: one fixed split per scene.

Every scene is cut into three column strips, fixed by its width and ratio alone:

* **test**: the right quarter (:func:`jfusion.pansharpening.wald.split_test_region`; HS scenes:
  :func:`jfusion.pansharpening.mshs.split_columns`). Only the final report
  (:func:`jfusion.training.report.final_report`, ``jfusion train final-report``) reads it, once
  per asset file; its scores go to ``scores.test`` of the manifest and are reported whatever they are.
* **validation**: the right quarter of what is left. Step counts (early stopping), architecture
  choices and the ship decision (:func:`ship_decision`) are made on it; its scores go to
  ``scores.validation``.
* **train**: the rest; the only pixels an optimiser sees.

All strips are whole low-resolution pixels (multiples of the ratio), so each can be degraded by
Wald's protocol on its own. The rule is enforced in code: :func:`test_strip` raises
:class:`ProtocolError` unless the caller is inside :func:`reading_test`, which only the final
report enters; training code receives the train and validation strips only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = [
    "ProtocolError", "ColumnSplit", "column_split", "reading_test", "test_allowed", "train_strip", "validation_strip",
    "test_strip", "ship_decision", "SHIP_RULE",
]

SHIP_RULE = "beats EXP on the validation strip on the quality index (Q2n, else Q), SAM and ERGAS together"
"""The rule :func:`ship_decision` applies (recorded in every manifest as ``ship_rule``)."""


class ProtocolError(RuntimeError):
    """Code outside the final report asked for a scene's test strip."""


_state = threading.local()


@contextlib.contextmanager
def reading_test() -> Iterator[None]:
    """The one context in which :func:`test_strip` answers (entered by the final report only)."""
    depth = getattr(_state, "depth", 0)
    _state.depth = depth + 1
    try:
        yield
    finally:
        _state.depth = depth


def test_allowed() -> bool:
    """Whether the caller is inside :func:`reading_test`."""
    return getattr(_state, "depth", 0) > 0


def score_test_once(path: Any, score: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The test scores of the asset ``path``, computed at most once per weights file.

    ``score()`` runs inside :func:`reading_test`; its result goes to the manifest's ``scores.test`` (the
    validation scores kept apart) with ``test_read`` = the sha256 of the weights it scored. Called again on the
    same file, the recorded scores are returned and the test split is not read.
    """
    from jfusion import assets

    man = assets.read_manifest(path)
    if man.get("test_read") == man.get("sha256") and man["scores"].get("test"):
        return man["scores"]["test"]
    with reading_test():
        scores = score()
    assets.update_manifest(path, {"scores": {"validation": man["scores"]["validation"], "test": scores},
                                  "test_read": man["sha256"]})
    return scores


@dataclasses.dataclass(frozen=True)
class ColumnSplit:
    """Column boundaries (low-resolution pixels) of one scene: ``[first, val)`` train, ``[val, test)`` validation,
    ``[test, width)`` test; columns left of ``first`` are unused (whole low-resolution pixels)."""

    first: int
    val: int
    test: int
    width: int
    ratio: int

    def describe(self, unit: str = "MS", hr_unit: str | None = "PAN", scale: int | None = None) -> dict[str, str]:
        """The manifest's ``train_region`` / ``validation_region`` / ``test_region`` strings."""
        s = self.ratio if scale is None else scale

        def span(a: int, b: int) -> str:
            hr = f", {hr_unit} columns {a * s}-{b * s - 1}" if hr_unit else ""
            return f"{unit} columns {a}-{b - 1}{hr}"

        return {
            "train_region": span(self.first, self.val),
            "validation_region": span(self.val, self.test) + " (right quarter of the rest)",
            "test_region": span(self.test, self.width) + " (right quarter)",
        }


def column_split(width: int, ratio: int, *, first: int = 0) -> ColumnSplit:
    """The fixed split of a scene ``width`` low-resolution columns wide (``first`` columns unused).

    The test strip starts at ``first + (n - n // 4)`` rounded down to a multiple of ``ratio``
    (``n = width - first``), the validation strip at the same rule applied to ``first..test``.
    IKONOS / GeoEye-1 / WV2 (320 columns, ratio 4): train 0-179, validation 180-239, test 240-319.

    Raises:
      ValueError: a strip would be empty.
    """
    n = width - first
    test = first + (n - n // 4) // ratio * ratio
    m = test - first
    val = first + (m - m // 4) // ratio * ratio
    if not first < val < test < width:
        raise ValueError(f"a scene {width} columns wide (ratio {ratio}) is too narrow for a train / validation / test split")
    return ColumnSplit(first=first, val=val, test=test, width=width, ratio=ratio)


def _cols(x: Any, a: int, b: int, scale: int = 1) -> np.ndarray:
    return np.asarray(x)[:, a * scale : b * scale]


def train_strip(split: ColumnSplit, lr: Any, hr: Any, *, scale: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The training strip of a low-resolution image ``lr (h, w[, B])`` and its high-resolution partner ``hr``
    (``scale`` times wider, default the split's ratio)."""
    s = split.ratio if scale is None else scale
    return _cols(lr, split.first, split.val), _cols(hr, split.first, split.val, s)


def validation_strip(split: ColumnSplit, lr: Any, hr: Any, *, scale: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The validation strip (see :func:`train_strip`)."""
    s = split.ratio if scale is None else scale
    return _cols(lr, split.val, split.test), _cols(hr, split.val, split.test, s)


def test_strip(split: ColumnSplit, lr: Any, hr: Any, *, scale: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The test strip (see :func:`train_strip`); only inside :func:`reading_test`.

    Raises:
      ProtocolError: called outside the final report.
    """
    if not test_allowed():
        raise ProtocolError(
            "the test strip is read only by the final report (jfusion.training.report.final_report); "
            "train, choose steps and decide what ships on the validation strip"
        )
    s = split.ratio if scale is None else scale
    return _cols(lr, split.test, split.width), _cols(hr, split.test, split.width, s)


def ship_decision(validation: dict[str, dict[str, float]]) -> bool:
    """Whether a model ships: :data:`SHIP_RULE` on ``{"model": scores, "exp": scores}`` of the validation strip."""
    m, e = validation["model"], validation["exp"]
    qk = "q2n" if "q2n" in m else "q"
    return bool(m[qk] > e[qk] and m["sam"] < e["sam"] and m["ergas"] < e["ergas"])
