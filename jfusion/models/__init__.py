"""Flax NNX models (no fusion logic): the weight-map CNNs of Liu et al. and the survey's Fig. 5.

The layers keep the backend's default precision (TF32 on recent NVIDIA GPUs, bfloat16 passes on a
TPU), which their training and inference speed depend on; the fixed arithmetic around them (the
classifier head as a dense convolution or a matrix product, the expected weight) asks for full
float32 through :mod:`jfusion.ops.precision`, so the dense and patch-wise heads agree.
"""

from jfusion.models.focus_cnn import PATCH, STRIDE, Branch, WeightNet, WeightNetConfig, class_weights

__all__ = ["PATCH", "STRIDE", "Branch", "WeightNet", "WeightNetConfig", "class_weights"]
