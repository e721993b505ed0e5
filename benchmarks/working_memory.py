"""Working memory of every general method, from XLA's compiled memory analysis, vs the registry's estimate.

``MethodInfo.working_bytes`` (peak bytes per source pixel and channel) drives the large-image
warning of ``jfusion.fuse`` and the automatic tiling of ``jfusion fuse``; this script measures
argument + output + temporary buffers of the jitted method on two grey sources and prints them
next to the declared figure (declared = about twice the measured, rounded). Run:
``python benchmarks/working_memory.py [SIDE]`` (default 256).
"""

from __future__ import annotations

import sys

import jax
import numpy as np

from jfusion.methods.registry import list_methods


def main(side: int = 256) -> None:
    x = np.random.default_rng(0).random((2, side, side)).astype(np.float32)
    print(f"| method | measured B/px ({side}x{side}, 2 sources) | declared working_bytes |")
    print("|---|---|---|")
    for info in list_methods():
        if info.name == "sr":  # OMP over every patch: minutes on CPU at this size
            print(f"| {info.name} | (not measured) | {info.working_bytes} |")
            continue
        ma = jax.jit(info.fn).lower(x).compile().memory_analysis()
        per = (ma.temp_size_in_bytes + ma.output_size_in_bytes + ma.argument_size_in_bytes) / x.size
        print(f"| {info.name} | {per:.0f} | {info.working_bytes} |", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 256)
