"""jfusion: pixel-level image fusion in JAX.

The public face only; the building blocks live in ``jfusion.ops``, ``jfusion.transforms``,
``jfusion.sparse``, ``jfusion.rules``, ``jfusion.metrics`` and ``jfusion.pansharpening``.
"""

from jfusion.api import evaluate, fuse, get_method, list_methods, pansharpen
from jfusion.errors import FusionInputError
from jfusion.io import read_image, write_image

__version__ = "0.1.0"

__all__ = [
    "FusionInputError",
    "evaluate",
    "fuse",
    "get_method",
    "list_methods",
    "pansharpen",
    "read_image",
    "write_image",
]
