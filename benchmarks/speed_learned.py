"""Learned models, jfusion (Flax NNX, jit) vs PyTorch (eager, CPU) side by side in one process.

For each model family (PNN, SRCNN, DRPNN, the 3-D CNN, the focus CNN's patch classifier and its
dense FC-as-convolution pass, the stacked SAE) the same network with the same weights (copied from
the Flax module into a ``torch.nn.Module``; outputs checked equal to ~1e-5 relative) is timed for
a forward pass and one Adam training step (MSE loss, same batch). jfusion is timed twice: with
XLA's own convolution (``nnx.Conv``'s path, "XLA conv") and with the CPU path of
:mod:`jfusion.models.conv` that the models use (unpadded layers given one padded row, 3-D folded into 2-D). Times are the best of ``--repeat`` runs
after a warm-up (compile excluded; the compile time of each jfusion program is listed).

PyTorch is an optional benchmark dependency (``pip install torch``), never a runtime one.

Run: ``PYTHONPATH=$PWD python benchmarks/speed_learned.py [--quick] [--out table.md]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from flax import nnx

from jfusion.models import WeightNet, WeightNetConfig
from jfusion.models import conv as fastconv
from jfusion.models.pansharpening import CNN3D, DRPNN, PNN, SRCNN, StackedSAE


@contextlib.contextmanager
def xla_conv(on: bool):
    """Trace with XLA's own convolution (``on``) instead of the patch-matmul path."""
    old = fastconv.enabled
    if on:
        fastconv.enabled = lambda: False
    try:
        yield
    finally:
        fastconv.enabled = old


def best(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


# -- Flax -> torch -----------------------------------------------------------------------
def t_conv(layer, nd: int) -> torch.nn.Module:
    k = np.asarray(layer.kernel[...])
    ks = k.shape[:nd]
    cls = torch.nn.Conv2d if nd == 2 else torch.nn.Conv3d
    pad = 0 if layer.padding == "VALID" else tuple(s // 2 for s in ks)
    m = cls(k.shape[-2], k.shape[-1], ks, padding=pad)
    perm = (nd + 1, nd, *range(nd))
    m.weight.data = torch.from_numpy(np.ascontiguousarray(k.transpose(perm)))
    m.bias.data = torch.from_numpy(np.asarray(layer.bias[...]).copy())
    return m


def t_linear(layer) -> torch.nn.Linear:
    k = np.asarray(layer.kernel[...])
    m = torch.nn.Linear(*k.shape)
    m.weight.data = torch.from_numpy(np.ascontiguousarray(k.T))
    m.bias.data = torch.from_numpy(np.asarray(layer.bias[...]).copy())
    return m


class TThree(torch.nn.Module):
    """conv-ReLU-conv-ReLU-conv (+ residual) in channels-first layout (PNN, SRCNN, CNN3D)."""

    def __init__(self, m, nd: int, *, residual: bool, crop: int = 0, bands: int | None = None):
        super().__init__()
        self.c1, self.c2, self.c3 = t_conv(m.conv1, nd), t_conv(m.conv2, nd), t_conv(m.conv3, nd)
        self.residual, self.crop, self.bands = residual, crop, bands

    def forward(self, x):
        y = self.c3(torch.relu(self.c2(torch.relu(self.c1(x)))))
        if self.residual:
            m = self.crop
            r = x[:, : self.bands] if self.bands else x
            y = y + (r[:, :, m : r.shape[2] - m, m : r.shape[3] - m] if m else r)
        return y


class TDRPNN(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.first = t_conv(m.first, 2)
        self.hidden = torch.nn.ModuleList([t_conv(c, 2) for c in m.hidden])
        self.to_input, self.out = t_conv(m.to_input, 2), t_conv(m.out, 2)

    def forward(self, x):
        y = torch.relu(self.first(x))
        for c in self.hidden:
            y = torch.relu(c(y))
        return self.out(x + self.to_input(y))


class TSAE(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.e1, self.d1 = t_linear(m.ae1.enc), t_linear(m.ae1.dec)
        self.e2, self.d2 = t_linear(m.ae2.enc), t_linear(m.ae2.dec)

    def forward(self, x):
        s = torch.sigmoid
        return s(self.d1(s(self.d2(s(self.e2(s(self.e1(x))))))))


class TFocus(torch.nn.Module):
    """Siamese WeightNet, fc head: patch logits (dense=False) or the dense FC-as-conv map (dense=True)."""

    def __init__(self, m: WeightNet):
        super().__init__()
        b = m.branch_a
        self.c1, self.c2, self.c3 = t_conv(b.conv1, 2), t_conv(b.conv2, 2), t_conv(b.conv3, 2)
        k1 = np.asarray(m.fc1.kernel[...])
        c = k1.shape[0] // 64
        self.fc1_conv = torch.nn.Conv2d(c, k1.shape[1], 8)
        self.fc1_conv.weight.data = torch.from_numpy(np.ascontiguousarray(k1.reshape(8, 8, c, -1).transpose(3, 2, 0, 1)))
        self.fc1_conv.bias.data = torch.from_numpy(np.asarray(m.fc1.bias[...]).copy())
        self.out = t_linear(m.out)

    def branch(self, x):
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        return torch.relu(self.c3(torch.nn.functional.max_pool2d(x, 2, ceil_mode=True)))

    def forward(self, a, b):
        f = torch.cat([self.branch(a), self.branch(b)], 1)
        h = torch.relu(self.fc1_conv(f))  # (N, hidden, h', w'); a 16x16 patch gives 1x1
        return self.out(h.permute(0, 2, 3, 1))  # (N, h', w', classes)


# -- cases ---------------------------------------------------------------------------------
def to_t(x: np.ndarray, nd: int) -> torch.Tensor:
    """NHWC (NHWDC) -> NCHW (NCHWD)."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))


def families(quick: bool):
    rng = np.random.default_rng(0)
    r = lambda *s: rng.random(s, dtype=np.float32)  # noqa: E731
    big = 256 if quick else 1296
    pnn = PNN(7, 4, features=(32, 16), kernels=(9, 5, 5), rngs=nnx.Rngs(0))
    srcnn = SRCNN(channels=4, features=(32, 16), kernels=(9, 5, 5), residual=True, rngs=nnx.Rngs(1))
    drpnn = DRPNN(5, 4, features=16, depth=11, kernel=7, rngs=nnx.Rngs(2))
    cnn3d = CNN3D(features=(16, 8), kernels=((5, 5, 3), (3, 3, 3), (3, 3, 3)), residual=True, rngs=nnx.Rngs(3))
    focus = WeightNet(config=WeightNetConfig(arch="siamese", head="fc256", widths=(32, 64, 128), hidden=64), rngs=nnx.Rngs(4))
    sae = StackedSAE(49, (128, 64), rngs=nnx.Rngs(5))
    m = pnn.margin
    yield ("PNN (7-32-16-4, 9-5-5 valid)", pnn, TThree(pnn, 2, residual=False), 2,
           r(1, big, big, 7), r(64, 33, 33, 7), r(64, 33 - 2 * m, 33 - 2 * m, 4))
    # the papers' widths (the models' defaults since issue 13): PNN 64/32, SRCNN 64/32, DRPNN 64 wide
    pnn_full = PNN(7, 4, rngs=nnx.Rngs(6))
    yield ("PNN 64/32 (7-64-32-4, 9-5-5 valid)", pnn_full, TThree(pnn_full, 2, residual=False), 2,
           r(1, big, big, 7), r(64, 33, 33, 7), r(64, 33 - 2 * m, 33 - 2 * m, 4))
    srcnn_full = SRCNN(channels=4, features=(64, 32), kernels=(9, 5, 5), residual=True, rngs=nnx.Rngs(7))
    yield ("SRCNN 64/32 (4-64-32-4, 9-5-5 same)", srcnn_full, TThree(srcnn_full, 2, residual=True), 2,
           r(1, big // 2, big // 2, 4), r(64, 33, 33, 4), r(64, 33, 33, 4))
    drpnn_full = DRPNN(5, 4, features=64, depth=11, kernel=7, rngs=nnx.Rngs(8))
    yield ("DRPNN 64 (11 x 7x7, 64 ch)", drpnn_full, TDRPNN(drpnn_full), 2,
           r(1, big // 2, big // 2, 5), r(16, 33, 33, 5), r(16, 33, 33, 4))
    yield ("SRCNN (4-32-16-4, 9-5-5 same)", srcnn, TThree(srcnn, 2, residual=True), 2,
           r(1, big // 2, big // 2, 4), r(64, 33, 33, 4), r(64, 33, 33, 4))
    yield ("DRPNN (11 x 7x7, 16 ch)", drpnn, TDRPNN(drpnn), 2,
           r(1, big // 2, big // 2, 5), r(16, 33, 33, 5), r(16, 33, 33, 4))
    yield ("3-D CNN (16-8, 5x5x3/3x3x3)", cnn3d, TThree(cnn3d, 3, residual=True), 3,
           r(1, big // 4, big // 4, 9, 1), r(16, 20, 20, 9, 1), r(16, 20, 20, 9, 1))
    yield ("focus CNN (siamese 32-64-128, fc 64)", focus, TFocus(focus), "focus",
           (r(1, big // 2, big // 2, 1), r(1, big // 2, big // 2, 1)), (r(256, 16, 16, 1), r(256, 16, 16, 1)), r(256, 2))
    yield ("stacked SAE (49-128-64)", sae, TSAE(sae), 0, r(big * 64, 49), r(256, 49), r(256, 49))


def run(quick: bool, repeat: int, only: str | None = None) -> list[dict]:
    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", os.cpu_count() or 1)))
    rows = []
    for name, model, tmodel, kind, x_fwd, x_tr, y_tr in families(quick):
        if only and not name.lower().startswith(only.lower()):
            continue
        graphdef, state = nnx.split(model)
        if kind == "focus":
            f_fwd = lambda s, x: nnx.merge(graphdef, s).dense_logits(*x)  # noqa: E731
            f_tr = lambda s, x: nnx.merge(graphdef, s)(*x)  # noqa: E731
            tx_f = tuple(to_t(a, 2) for a in x_fwd)
            tx_t = tuple(to_t(a, 2) for a in x_tr)
            t_fwd = lambda x: tmodel(*x)  # noqa: E731
            t_tr = lambda x: tmodel(*x)[:, 0, 0]  # noqa: E731
            back = lambda y: y.detach().numpy()  # noqa: E731
        else:
            f_fwd = f_tr = lambda s, x: nnx.merge(graphdef, s)(x)  # noqa: E731
            nd = kind
            tx_f, tx_t = (to_t(x_fwd, nd), to_t(x_tr, nd)) if nd else (torch.from_numpy(x_fwd), torch.from_numpy(x_tr))
            t_fwd = t_tr = tmodel
            back = (lambda y: np.moveaxis(y.detach().numpy(), 1, -1)) if nd else (lambda y: y.detach().numpy())
        y_t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(y_tr, -1, 1) if kind in (2, 3) else y_tr))
        tx = optax.adam(1e-4)

        def make_step():
            def step(s, opt, x, y):
                loss, g = jax.value_and_grad(lambda s: jnp.mean((f_tr(s, x) - y) ** 2))(s)
                u, opt = tx.update(g, opt, s)
                return optax.apply_updates(s, u), opt, loss
            return jax.jit(step)

        row = {"family": name}
        with torch.no_grad():
            t_out = back(t_fwd(tx_f))
            row["torch fwd"] = best(lambda: t_fwd(tx_f), repeat)
        for label, xla in (("XLA conv", True), ("jfusion", False)):
            with xla_conv(xla):
                # a fresh function object per path: jax.jit caches traces by the function, so jitting
                # f_fwd itself twice would time the first path's program again
                fwd = jax.jit(lambda s, x: f_fwd(s, x))  # noqa: E731
                t0 = time.perf_counter()
                out = jax.block_until_ready(fwd(state, x_fwd))
                row[f"{label} fwd compile"] = time.perf_counter() - t0
                row[f"{label} fwd"] = best(lambda: jax.block_until_ready(fwd(state, x_fwd)), repeat)
                row[f"{label} fwd err"] = float(np.max(np.abs(np.asarray(out) - t_out)) / np.max(np.abs(t_out)))
                step = make_step()
                opt = tx.init(state)
                t0 = time.perf_counter()
                _, _, loss = jax.block_until_ready(step(state, opt, x_tr, y_tr))
                row[f"{label} step compile"] = time.perf_counter() - t0
                row[f"{label} step"] = best(lambda: jax.block_until_ready(step(state, opt, x_tr, y_tr)), repeat)
                row[f"{label} loss"] = float(loss)
        topt = torch.optim.Adam(tmodel.parameters(), lr=1e-4)

        def torch_step():
            topt.zero_grad()
            loss = torch.mean((t_tr(tx_t) - y_t) ** 2)
            loss.backward()
            return float(loss.detach())

        row["torch loss"] = torch_step()  # also the warm-up
        row["torch step"] = best(torch_step, repeat)
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


HEADER = (
    "| family | forward: XLA conv / jfusion / PyTorch (s) | jfusion / PyTorch | rel. diff | "
    "Adam step: XLA conv / jfusion / PyTorch (s) | jfusion / PyTorch | compile fwd / step (s) |\n"
    "|---|---|---|---|---|---|---|"
)


def format_row(r: dict) -> str:
    return (
        f"| {r['family']} | {r['XLA conv fwd']:.3f} / {r['jfusion fwd']:.3f} / {r['torch fwd']:.3f} | "
        f"{r['jfusion fwd'] / r['torch fwd']:.2f} | {r['jfusion fwd err']:.1e} | "
        f"{r['XLA conv step']:.4f} / {r['jfusion step']:.4f} / {r['torch step']:.4f} | "
        f"{r['jfusion step'] / r['torch step']:.2f} | {r['jfusion fwd compile']:.1f} / {r['jfusion step compile']:.1f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small forward inputs (256 px PNN instead of 1296)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default=None, help="only the families whose name starts with this (e.g. PNN)")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args()
    print(f"jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(HEADER)
    rows = run(args.quick, args.repeat, args.only)
    if args.out:
        from jfusion.io import atomic_output

        with atomic_output(args.out, overwrite=True) as tmp:
            with open(tmp, "w") as fh:
                fh.write(HEADER + "\n" + "\n".join(format_row(r) for r in rows) + "\n")


if __name__ == "__main__":
    main()
