"""Flax NNX models (no fusion logic): the weight-map CNNs of Liu et al. and the survey's Fig. 5."""

from jfusion.models.focus_cnn import PATCH, STRIDE, Branch, WeightNet, WeightNetConfig, class_weights

__all__ = ["PATCH", "STRIDE", "Branch", "WeightNet", "WeightNetConfig", "class_weights"]
