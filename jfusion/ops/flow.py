"""Dense optical flow in JAX: pyramidal TV-L1 (Zach, Pock, Bischof 2007) and bilinear warping.

Flow convention (OpenCV's): ``flow`` has shape ``(H, W, 2)``, ``flow[..., 0]`` the horizontal
(x, column) and ``flow[..., 1]`` the vertical (y, row) displacement, in pixels, such that
``image0(y, x) ~ image1(y + flow[y, x, 1], x + flow[y, x, 0])``. :func:`warp` applies that
backward mapping: ``warp(image1, flow)`` is ``image1`` resampled onto ``image0``'s grid.

The solver follows the duality-based TV-L1 of Zach, Pock & Bischof (DAGM 2007) in the
formulation of Sanchez, Meinhardt-Llopis & Facciolo (IPOL 2013): the data term linearised
around the current flow at each warp, the pointwise thresholding step for the auxiliary field
``v``, and Chambolle's fixed-point iteration for the dual variables ``p`` of the TV term.
Coarse to fine over a Gaussian pyramid (scale factor 1/2), a fixed number of warps per level
and of inner iterations per warp (``lax.fori_loop``), so every shape is static: the function
jits once per image size and vmaps over image pairs. Optionally (``median=True``) the flow is
3x3-median filtered after every warp (Wedel et al. 2009), which removes outliers of the
thresholding step.

References:
  C. Zach, T. Pock, H. Bischof, "A duality based approach for realtime TV-L1 optical flow",
  DAGM 2007, LNCS 4713, 214-223.
  J. Sanchez, E. Meinhardt-Llopis, G. Facciolo, "TV-L1 optical flow estimation",
  Image Processing On Line 3 (2013) 137-150.
  A. Chambolle, "An algorithm for total variation minimization and applications",
  J. Math. Imaging Vis. 20 (2004) 89-97.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.ops.colour import rgb_to_gray
from jfusion.ops.filters import gaussian_filter

__all__ = ["warp", "tvl1_flow", "flow_levels", "endpoint_error"]


def warp(image: ArrayLike, flow: ArrayLike) -> jax.Array:
    """Backward bilinear warp: ``out[y, x] = image[y + flow[y, x, 1], x + flow[y, x, 0]]``.

    Args:
      image: ``(H, W)`` or ``(H, W, C)``, any range.
      flow: ``(H, W, 2)`` displacements in pixels (x first, as OpenCV).

    Returns:
      ``image``'s shape and float dtype. Samples outside the image take the nearest border
      value (replicate). Differentiable in both arguments.
    """
    image = jnp.asarray(image)
    flow = jnp.asarray(flow, jnp.float32)
    if not jnp.issubdtype(image.dtype, jnp.floating):
        image = image.astype(jnp.float32)
    h, w = image.shape[:2]
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    x = jnp.clip(xx + flow[..., 0], 0.0, w - 1.0)
    y = jnp.clip(yy + flow[..., 1], 0.0, h - 1.0)
    x0 = jnp.clip(jnp.floor(x), 0, max(w - 2, 0))
    y0 = jnp.clip(jnp.floor(y), 0, max(h - 2, 0))
    fx, fy = x - x0, y - y0
    x0i, y0i = x0.astype(jnp.int32), y0.astype(jnp.int32)
    x1i, y1i = jnp.minimum(x0i + 1, w - 1), jnp.minimum(y0i + 1, h - 1)
    if image.ndim == 3:
        fx, fy = fx[..., None], fy[..., None]
    a = image[y0i, x0i]
    b = image[y0i, x1i]
    c = image[y1i, x0i]
    d = image[y1i, x1i]
    top = a + fx * (b - a)
    bottom = c + fx * (d - c)
    return (top + fy * (bottom - top)).astype(image.dtype)


def endpoint_error(flow: ArrayLike, reference: ArrayLike, *, border: int = 0) -> jax.Array:
    """Mean endpoint error ``mean(|flow - reference|_2)`` over the pixels at least ``border`` from the edge."""
    d = jnp.asarray(flow, jnp.float32) - jnp.asarray(reference, jnp.float32)
    e = jnp.sqrt(jnp.sum(d * d, axis=-1))
    if border:
        e = e[border:-border, border:-border]
    return jnp.mean(e)


def flow_levels(shape: tuple[int, int], *, min_size: int = 16, max_levels: int = 6) -> int:
    """Number of pyramid levels (factor 2) that keep the coarsest level at least ``min_size`` pixels."""
    n = 1 + int(math.floor(math.log2(max(min(shape) / float(min_size), 1.0))))
    return max(1, min(n, max_levels))


# ------------------------------------------------------------------------------------------
# finite differences (forward gradient, backward divergence: its negative adjoint)
# ------------------------------------------------------------------------------------------
def _forward_grad(u: jax.Array) -> tuple[jax.Array, jax.Array]:
    ux = jnp.concatenate([u[:, 1:] - u[:, :-1], jnp.zeros_like(u[:, :1])], axis=1)
    uy = jnp.concatenate([u[1:] - u[:-1], jnp.zeros_like(u[:1])], axis=0)
    return ux, uy


def _divergence(px: jax.Array, py: jax.Array) -> jax.Array:
    dx = jnp.concatenate([px[:, :1], px[:, 1:-1] - px[:, :-2], -px[:, -2:-1]], axis=1)
    dy = jnp.concatenate([py[:1], py[1:-1] - py[:-2], -py[-2:-1]], axis=0)
    return dx + dy


def _central_grad(im: jax.Array) -> tuple[jax.Array, jax.Array]:
    p = jnp.pad(im, 1, mode="edge")
    gx = 0.5 * (p[1:-1, 2:] - p[1:-1, :-2])
    gy = 0.5 * (p[2:, 1:-1] - p[:-2, 1:-1])
    return gx, gy


def _median3(u: jax.Array) -> jax.Array:
    p = jnp.pad(u, 1, mode="edge")
    h, w = u.shape
    stack = jnp.stack([p[i : i + h, j : j + w] for i in range(3) for j in range(3)])
    return jnp.median(stack, axis=0)


def _pyramid(im: jax.Array, levels: int) -> list[jax.Array]:
    out = [im]
    sigma = 0.6 * math.sqrt(1.0 / 0.25 - 1.0)  # IPOL's anti-aliasing for a factor-1/2 zoom
    for _ in range(1, levels):
        prev = out[-1]
        shape = ((prev.shape[0] + 1) // 2, (prev.shape[1] + 1) // 2)
        out.append(jax.image.resize(gaussian_filter(prev, sigma), shape, method="linear"))
    return out


def _level(i0, i1, u, *, lam, theta, tau, warps, iterations, median):
    """Refine ``u`` (H, W, 2) at one pyramid level: ``warps`` linearisations x ``iterations`` steps."""
    gx1, gy1 = _central_grad(i1)
    lt = lam * theta
    tt = tau / theta

    def one_warp(_, carry):
        u, p = carry
        i1w = warp(i1, u)
        gx = warp(gx1, u)
        gy = warp(gy1, u)
        g2 = gx * gx + gy * gy
        safe = jnp.where(g2 > 1e-10, g2, 1.0)
        rho_c = i1w - gx * u[..., 0] - gy * u[..., 1] - i0

        def step(_, c):
            u1, u2, p11, p12, p21, p22 = c
            rho = rho_c + gx * u1 + gy * u2
            low = rho < -lt * g2
            high = rho > lt * g2
            d1 = jnp.where(low, lt * gx, jnp.where(high, -lt * gx, jnp.where(g2 > 1e-10, -rho * gx / safe, 0.0)))
            d2 = jnp.where(low, lt * gy, jnp.where(high, -lt * gy, jnp.where(g2 > 1e-10, -rho * gy / safe, 0.0)))
            v1, v2 = u1 + d1, u2 + d2
            u1 = v1 + theta * _divergence(p11, p12)
            u2 = v2 + theta * _divergence(p21, p22)
            ux, uy = _forward_grad(u1)
            ng = 1.0 + tt * jnp.sqrt(ux * ux + uy * uy)
            p11, p12 = (p11 + tt * ux) / ng, (p12 + tt * uy) / ng
            ux, uy = _forward_grad(u2)
            ng = 1.0 + tt * jnp.sqrt(ux * ux + uy * uy)
            p21, p22 = (p21 + tt * ux) / ng, (p22 + tt * uy) / ng
            return u1, u2, p11, p12, p21, p22

        u1, u2, *ps = jax.lax.fori_loop(0, iterations, step, (u[..., 0], u[..., 1], *p))
        if median:
            u1, u2 = _median3(u1), _median3(u2)
        return jnp.stack([u1, u2], axis=-1), tuple(ps)

    zeros = jnp.zeros_like(i0)
    u, _ = jax.lax.fori_loop(0, warps, one_warp, (u, (zeros, zeros, zeros, zeros)))
    return u


def _grey(x: jax.Array) -> jax.Array:
    if x.ndim == 2:
        return x
    if x.shape[-1] == 3:
        return rgb_to_gray(x)  # MATLAB rgb2gray, a full-precision product (jfusion.ops.precision)
    return jnp.mean(x, axis=-1)


@functools.partial(jax.jit, static_argnames=("levels", "warps", "iterations", "median"))
def tvl1_flow(
    image0: ArrayLike,
    image1: ArrayLike,
    *,
    lam: float = 0.15,
    theta: float = 0.3,
    tau: float = 0.25,
    levels: int | None = None,
    warps: int = 3,
    iterations: int = 100,
    median: bool = True,
) -> jax.Array:
    """TV-L1 optical flow from ``image0`` to ``image1`` (coarse to fine, static shapes, jitted).

    Args:
      image0, image1: ``(H, W)`` or ``(H, W, C)`` in [0, 1] (RGB is taken to grey, other channel
        counts averaged); same shape, ``H, W >= 2``.
      lam: data-term weight (IPOL's 0.15, for intensities on a 0-255 scale: the images are
        scaled by 255 inside).
      theta: coupling of ``u`` and ``v`` (0.3); tau: dual time step (0.25, stable for <= 0.25).
      levels: pyramid levels (factor 2); ``None``: :func:`flow_levels` of the image size.
      warps: linearisations per level (3); iterations: inner steps per warp (100; IPOL stops at
        300 or on convergence, OpenCV runs up to 10 x 30 per warp).
      median: 3x3 median filter of the flow after every warp (True).

    Returns:
      ``(H, W, 2)`` float32 flow (see the module docstring for the convention).
    """
    i0 = _grey(jnp.asarray(image0, jnp.float32)) * 255.0
    i1 = _grey(jnp.asarray(image1, jnp.float32)) * 255.0
    n = flow_levels(i0.shape) if levels is None else levels
    pyr0, pyr1 = _pyramid(i0, n), _pyramid(i1, n)
    u = jnp.zeros(pyr0[-1].shape + (2,), jnp.float32)
    for k in range(n - 1, -1, -1):
        a, b = pyr0[k], pyr1[k]
        if u.shape[:2] != a.shape:
            sy, sx = a.shape[0] / u.shape[0], a.shape[1] / u.shape[1]
            u = jax.image.resize(u, a.shape + (2,), method="linear") * jnp.asarray([sx, sy], jnp.float32)
        u = _level(a, b, u, lam=lam, theta=theta, tau=tau, warps=warps, iterations=iterations, median=median)
    return u
