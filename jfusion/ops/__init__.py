"""Building blocks shared by every method: filters, colour, patches, resampling, full-precision products."""

from jfusion.ops.colour import RGB_TO_GRAY, rgb_to_gray, rgb_to_ycbcr, ycbcr_to_rgb
from jfusion.ops.filters import (
    Border,
    box_filter,
    box_sum_valid,
    correlate1d,
    correlate_valid,
    filter2d,
    filter2d_dense,
    gaussian_filter,
    gaussian_kernel1d,
    guided_filter,
    laplacian,
    pad2d,
    separable_filter,
    sobel,
    sobel_edges,
    window_sum,
)
from jfusion.ops.flow import endpoint_error, tvl1_flow, warp
from jfusion.ops.patches import extract_patches, fold_patches, patch_starts
from jfusion.ops.resample import downsample, resize, upsample_zeros

__all__ = [
    "Border",
    "RGB_TO_GRAY",
    "box_filter",
    "box_sum_valid",
    "correlate1d",
    "correlate_valid",
    "downsample",
    "endpoint_error",
    "extract_patches",
    "filter2d",
    "filter2d_dense",
    "fold_patches",
    "gaussian_filter",
    "gaussian_kernel1d",
    "guided_filter",
    "laplacian",
    "pad2d",
    "patch_starts",
    "resize",
    "rgb_to_gray",
    "rgb_to_ycbcr",
    "separable_filter",
    "sobel",
    "sobel_edges",
    "tvl1_flow",
    "upsample_zeros",
    "warp",
    "window_sum",
    "ycbcr_to_rgb",
]
