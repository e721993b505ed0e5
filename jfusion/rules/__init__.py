"""Fusion rules: activity measures, combination rules and consistency verification."""

from jfusion.rules.activity import (
    abs_activity,
    block_spatial_frequency,
    local_variance,
    spatial_frequency,
    window_energy,
    window_max_abs,
)
from jfusion.rules.combine import (
    apply_weights,
    choose_max,
    max_sources,
    max_weights,
    mean_sources,
    min_sources,
    soft_choose_max,
    soft_max_weights,
    sum_sources,
    weighted_average,
)
from jfusion.rules.consistency import (
    clean_binary_map,
    clean_label_map,
    guided_refine,
    label_components,
    majority_filter,
    remove_small_regions,
)

__all__ = [
    "abs_activity",
    "apply_weights",
    "block_spatial_frequency",
    "choose_max",
    "clean_binary_map",
    "clean_label_map",
    "guided_refine",
    "label_components",
    "local_variance",
    "majority_filter",
    "max_sources",
    "max_weights",
    "mean_sources",
    "min_sources",
    "remove_small_regions",
    "soft_choose_max",
    "soft_max_weights",
    "spatial_frequency",
    "sum_sources",
    "weighted_average",
    "window_energy",
    "window_max_abs",
]
