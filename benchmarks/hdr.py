"""HDR benchmark (issue 14.1): ``deep-hdr`` (direct / we / wie) against ``mertens`` and the flow-aligned average.

Prints Markdown (copied into benchmarks/README.md, section "HDR (deep-hdr, issue 14.1)") and writes figures
under ``benchmarks/results/``:

1. held-out synthetic test stacks: PSNR-mu, PSNR-L, SSIM-mu of the three shipped networks and of the
   baselines, *read from the shipped manifests* (``scores.test``): ``jfusion train deep-hdr`` scored the test
   split once, at the end of a training whose asset passed the ship rule on validation (a run that did not ship
   never read it: its row shows validation only); this script never synthesises or reads the test split;
2. the real exposure sequences of ``shared/data/mef/ifcnn_sequences`` (no ground truth): three frames
   (the middle one by mean intensity and its darker and brighter neighbours), exposure-time ratios estimated from the frames
   (median of ``I_b^2.2 / I_a^2.2`` over pixels well exposed in both), the measured TV-L1 motion of each
   non-reference frame, and MEF-SSIM (Ma et al. 2015, against the three frames) of every output;
   figure ``hdr_real.png``;
3. ghosting: a dynamic stack synthesised (:func:`jfusion.data.hdr.synthesize_stack`, larger motion than in
   training) from a frame that is in no training split (``ifcnn_sequences/house/house3.jpg``), fused by
   ``mertens`` (unaligned), the unaligned HDR average, the flow-aligned average and ``deep-hdr``, with a zoom on
   the most-moving textured region; figure ``hdr_ghosting.png`` and the PSNR-mu of each against the known
   radiance.

Run:  PYTHONPATH=$PWD python benchmarks/hdr.py [--max-side 360] [--flow-iterations 50]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jfusion as jf
from jfusion import hdr
from jfusion.data.hdr import HDRSynthConfig, synthesize_stack
from jfusion.io import read_image
from jfusion.weights import WEIGHTS_DIR

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ARCHS = ("direct", "we", "wie")
METRIC_NAMES = ("psnr_mu", "psnr_l", "ssim_mu")


def data_root() -> Path:
    import os

    return Path(os.environ.get("JFUSION_DATA", ROOT.parent / "shared" / "data"))


def manifests(runs: Path | None) -> dict[str, tuple[dict, str]]:
    """``arch -> (manifest, asset path)``: the run folder's asset (``RUNS/<arch>/deep_hdr/<arch>``) when ``runs`` is
    given and holds one, else the shipped one; archs with neither are left out."""
    out = {}
    for arch in ARCHS:
        for base in ([runs / arch / "deep_hdr"] if runs else []) + [WEIGHTS_DIR / "deep_hdr"]:
            p = base / f"{arch}.json"
            if p.exists():
                out[arch] = (json.loads(p.read_text()), str(base / arch))
                break
    return out


def synthetic_table(mans: dict[str, dict]) -> str:
    """Validation (chosen step) and test scores from the manifests; the baselines from each manifest's test record."""
    rows = ["| method | chosen step (val) | val PSNR-mu | test PSNR-mu | test PSNR-L | test SSIM-mu |", "|---|---|---|---|---|---|"]
    base = None
    for arch, m in mans.items():
        v, t = m["scores"]["validation"], m["scores"]["test"]
        if not t:  # did not ship: its training never read the test split
            rows.append(f"| deep-hdr `{arch}` | {v['step']} of {m['steps_run']} | {v['psnr_mu']:.2f} | not read (does not ship) | - | - |")
            continue
        d = t["deep-hdr"]
        rows.append(f"| deep-hdr `{arch}` | {v['step']} of {m['steps_run']} | {v['psnr_mu']:.2f} | {d['psnr_mu']:.2f} | "
                    f"{d['psnr_l']:.2f} | {d['ssim_mu']:.4f} |")
        b = {k: t[k] for k in ("mertens", "flow_average", "flow_hat_average")}
        if base is not None and json.dumps(b, sort_keys=True) != json.dumps(base, sort_keys=True):
            raise RuntimeError("the manifests' baselines differ: they were not scored on the same test stacks")
        base = b
    names = {"mertens": "`mertens` (unaligned, read at the reference exposure)", "flow_average": "flow-aligned average",
             "flow_hat_average": "flow-aligned triangle-weighted average"}
    for k, label in names.items():
        if base:
            s = base[k]
            rows.append(f"| {label} | - | - | {s['psnr_mu']:.2f} | {s['psnr_l']:.2f} | {s['ssim_mu']:.4f} |")
    tested = [m for m in mans.values() if m["scores"]["test"]]
    if tested:
        m = tested[0]
        rows.append("")
        rows.append(f"{m['scores']['test']['stacks']} test stacks of {m['scores']['test']['crop']}x{m['scores']['test']['crop']} px "
                    f"({m['data']['n_images']['test']} held-out source images), 6-px border excluded.")
    return "\n".join(rows)


def validation_baselines(man: dict) -> dict[str, dict[str, float]]:
    """The baselines on the *validation* stacks of a manifest's run (rebuilt exactly as training built them).

    The ship rule is decided here, on validation only: a network ships when its validation PSNR-mu beats every
    baseline's. The test split is not built.
    """
    from jfusion.data.folder import image_paths
    from jfusion.data.hdr import split_sources
    from jfusion.models.hdr import HDRNetConfig
    from jfusion.training.hdr import HDRTrainConfig, _split_stacks, baselines

    t = dict(man["config"]["train"])
    synth = HDRSynthConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in t.pop("synth").items()})
    t.pop("model")
    cfg = HDRTrainConfig(model=HDRNetConfig.from_dict(man["config"]["model"]), synth=synth, **t)
    split = split_sources(image_paths(cfg.source))
    if cfg.max_images is not None:
        raise RuntimeError("max_images runs are not rebuilt here")
    val = _split_stacks(jax.random.fold_in(jax.random.key(cfg.seed), 101), split["val"], crop=cfg.eval_crop, per_image=1,
                        seed=cfg.seed + 1, config=cfg)
    assert val["aligned"].shape[0] == man["data"]["n_stacks"]["val"]
    return baselines(val, reference=cfg.synth.reference)


def ship_table(mans: dict[str, dict]) -> str:
    """The validation scores against the validation baselines: those the manifests record (runs since the ship rule
    moved into ``jfusion.training.hdr``), else rebuilt once by :func:`validation_baselines`."""
    recorded = [m["scores"]["validation"]["baselines"] for m in mans.values() if "baselines" in m["scores"]["validation"]]
    base = recorded[0] if recorded else validation_baselines(next(iter(mans.values())))
    if any(json.dumps(b, sort_keys=True) != json.dumps(base, sort_keys=True) for b in recorded):
        raise RuntimeError("the manifests' validation baselines differ: they were not scored on the same stacks")
    best = max(base, key=lambda k: base[k]["psnr_mu"])
    rows = ["| validation (39 stacks) | PSNR-mu | PSNR-L | SSIM-mu | ships (PSNR-mu above every baseline) |", "|---|---|---|---|---|"]
    for arch, m in mans.items():
        v = m["scores"]["validation"]
        rows.append(f"| deep-hdr `{arch}` (step {v['step']}) | {v['psnr_mu']:.2f} | {v['psnr_l']:.2f} | {v['ssim_mu']:.4f} | "
                    f"{'yes' if v['psnr_mu'] > base[best]['psnr_mu'] else 'no'} |")
    for k, s in base.items():
        rows.append(f"| {k} | {s['psnr_mu']:.2f} | {s['psnr_l']:.2f} | {s['ssim_mu']:.4f} | - |")
    return "\n".join(rows)


def _resize(img: np.ndarray, max_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    f = max(h, w) / max_side
    if f <= 1:
        return img
    shape = (round(h / f), round(w / f), img.shape[2])
    return np.asarray(jax.image.resize(jnp.asarray(img), shape, "linear", antialias=True))


def estimate_ratio(a: np.ndarray, b: np.ndarray, gamma: float = hdr.GAMMA) -> float:
    """Exposure-time ratio ``t_b / t_a`` of two LDR frames: median ``(I_b / I_a)^gamma`` where both are well exposed."""
    ok = (a > 0.1) & (a < 0.9) & (b > 0.1) & (b < 0.9)
    if ok.sum() < 100:
        raise RuntimeError("too few well-exposed pixels shared by two frames to estimate their exposure ratio")
    return float(np.median((b[ok] / a[ok]) ** gamma))


def load_sequence(folder: Path, max_side: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Three frames ``(3, H, W, 3)`` (by mean intensity: the middle one and its two neighbours) and their estimated relative times."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    frames = [np.asarray(read_image(str(p)), np.float32)[..., :3] for p in files]
    order = np.argsort([f.mean() for f in frames])
    m = len(order) // 2
    pick = [order[m - 1], order[m], order[m + 1]]  # the middle frame and its neighbours (about 2 EV apart, as in training)
    stack = np.stack([_resize(frames[i], max_side) for i in pick])
    r1 = estimate_ratio(stack[0], stack[1])
    r2 = estimate_ratio(stack[1], stack[2])
    return stack, np.asarray([1.0, r1, r1 * r2], np.float32), [files[i].name for i in pick]


def _tm_average(ldr: jax.Array, times: jax.Array) -> jax.Array:
    """Mu-law tonemap of the plain mean of the HDR-domain images ``I_j^gamma / t_j`` (radiance in lowest-time units)."""
    return hdr.mu_law(jnp.mean(hdr.ldr_to_hdr(ldr, times[:, None, None, None]), axis=0))


def fuse_all(stack: np.ndarray, times: np.ndarray, *, flow_iterations: int, archs) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every method's output image in [0, 1] and the flows from the reference to each frame."""
    x, t = jnp.asarray(stack), jnp.asarray(times)
    aligned, flows = hdr.align_exposures(x, t, reference=1, flow_options={"iterations": flow_iterations, "warps": 3})
    out = {
        "mertens": np.asarray(jf.fuse(list(stack), method="mertens")),
        "unaligned average": np.asarray(_tm_average(x, t)),
        "flow-aligned average": np.asarray(_tm_average(aligned, t)),
    }
    for arch, path in archs.items():
        out[f"deep-hdr {arch}"] = np.asarray(jf.fuse(stack, method="deep-hdr", arch=arch, weights=path,
                                                      times=tuple(float(v) for v in times), flow_iterations=flow_iterations))
    return out, np.asarray(flows)


def real_sequences(archs, *, max_side: int, flow_iterations: int) -> tuple[str, dict]:
    root = data_root() / "mef" / "ifcnn_sequences"
    scenes = sorted(p for p in root.iterdir() if p.is_dir() and p.name != "results")
    rows, figs = [], {}
    methods = None
    for scene in scenes:
        stack, times, names = load_sequence(scene, max_side)
        t0 = time.perf_counter()
        out, flows = fuse_all(stack, times, flow_iterations=flow_iterations, archs=archs)
        secs = time.perf_counter() - t0
        b = 12
        mag = np.linalg.norm(flows[[0, 2], b:-b, b:-b], axis=-1)
        scores = {}
        for k, img in out.items():
            scores[k] = jf.evaluate(list(stack), np.clip(img, 0, 1), metrics=["mef_ssim"], undefined="nan")["mef_ssim"]
        methods = list(out)
        rows.append((scene.name, stack.shape[1:3], names, times, float(mag.mean()), float(np.percentile(mag, 99)), scores, secs))
        figs[scene.name] = (stack, out)
    head = ("| scene | size | frames (low / ref / high) | est. times | TV-L1 motion mean / p99 (px) | "
            + " | ".join(f"MEF-SSIM {m}" for m in methods) + " |")
    lines = [head, "|" + "---|" * (5 + len(methods))]
    for name, (h, w), fr, t, mm, mp, sc, _ in rows:
        lines.append(f"| {name} | {w}x{h} | {' / '.join(fr)} | 1 / {t[1]:.2f} / {t[2]:.2f} | {mm:.2f} / {mp:.2f} | "
                     + " | ".join(f"{sc[m]:.4f}" for m in methods) + " |")
    mean = {m: float(np.nanmean([r[6][m] for r in rows])) for m in methods}
    lines.append("| mean | | | | | " + " | ".join(f"{mean[m]:.4f}" for m in methods) + " |")
    lines.append("")
    lines.append(f"Wall time per scene (all methods, flow included): {', '.join(f'{r[0]} {r[7]:.0f} s' for r in rows)}.")
    return "\n".join(lines), figs


def figure_real(figs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenes = list(figs)
    methods = list(next(iter(figs.values()))[1])
    cols = 1 + len(methods)
    fig, axes = plt.subplots(len(scenes), cols, figsize=(1.9 * cols, 1.6 * len(scenes)), squeeze=False)
    for i, s in enumerate(scenes):
        stack, out = figs[s]
        panels = [("reference frame", stack[1])] + [(m, out[m]) for m in methods]
        for j, (title, img) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(np.clip(img, 0, 1))
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=7)
            if j == 0:
                ax.set_ylabel(s, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ghosting(archs, *, flow_iterations: int, max_side: int, path: Path) -> str:
    """A synthetic dynamic stack from a frame in no training split; the figure and PSNR-mu against its radiance."""
    img = _resize(np.asarray(read_image(str(data_root() / "mef" / "ifcnn_sequences" / "house" / "house3.jpg")), np.float32)[..., :3],
                  max_side)
    cfg = HDRSynthConfig(max_shift=8.0, warp_amplitude=3.0)
    st = synthesize_stack(jax.random.key(2017), img, config=cfg)
    stack, times, rad = np.asarray(st["ldr"]), np.asarray(st["times"]), st["radiance"]
    out, _ = fuse_all(stack, times, flow_iterations=flow_iterations, archs=archs)
    out = {k: v for k, v in out.items()}
    truth = np.asarray(hdr.mu_law(rad))
    # PSNR-mu against the ground truth: mertens is an LDR image, read at the reference exposure (as in training's baselines)
    t_ref = float(times[1])
    radiance_of = {
        k: (hdr.ldr_to_hdr(jnp.asarray(v), t_ref) if k == "mertens" else hdr.mu_law_inverse(jnp.asarray(v))) for k, v in out.items()
    }
    b = 6
    psnr = {k: float(hdr.psnr_mu(r[b:-b, b:-b], rad[b:-b, b:-b])) for k, r in radiance_of.items()}
    # zoom: the window of largest |unaligned average - truth| (where the motion ghosts)
    err = np.abs(out["unaligned average"] - truth).mean(-1)
    z = 64
    h, w = err.shape
    cs = np.pad(err.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    win = cs[z:, z:] - cs[:-z, z:] - cs[z:, :-z] + cs[:-z, :-z]
    y, x = np.unravel_index(np.argmax(win), win.shape)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt

    panels = [("ground truth (mu-law)", truth)] + [(f"{k}\nPSNR-mu {psnr[k]:.1f} dB", v) for k, v in out.items()]
    fig, axes = plt.subplots(2, len(panels), figsize=(2.2 * len(panels), 4.6))
    for j, (title, im) in enumerate(panels):
        axes[0, j].imshow(np.clip(im, 0, 1))
        axes[0, j].add_patch(patches.Rectangle((x, y), z, z, fill=False, edgecolor="red", linewidth=1))
        axes[0, j].set_title(title, fontsize=7)
        axes[1, j].imshow(np.clip(im[y : y + z, x : x + z], 0, 1), interpolation="nearest")
        for ax in axes[:, j]:
            ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("Ghosting: synthetic dynamic stack (house3 as radiance, motion up to 8 px + 3 px smooth), zoom below", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return "| output | PSNR-mu vs ground truth (dB) |\n|---|---|\n" + "\n".join(f"| {k} | {v:.2f} |" for k, v in psnr.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-side", type=int, default=360, help="real frames are downscaled to this longest side")
    ap.add_argument("--flow-iterations", type=int, default=50)
    ap.add_argument("--runs", type=Path, default=None, help="run folder of the three trainings (RUNS/<arch>/deep_hdr/<arch>.json)")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    found = manifests(args.runs)
    mans = {a: m for a, (m, _) in found.items()}
    archs = {a: p for a, (_, p) in found.items()}
    for a, p in archs.items():
        print(f"{a}: {p} (sha256 {mans[a]['sha256'][:12] if isinstance(mans[a].get('sha256'), str) else mans[a].get('sha256')})")
    print(f"# HDR benchmark: archs {tuple(archs)}; {jax.device_count()} x {jax.devices()[0].platform}\n")
    print("## Synthetic test stacks (from the manifests)\n")
    print(synthetic_table(mans), "\n")
    print("## Ship check on the validation stacks\n")
    print(ship_table(mans), "\n")
    table, figs = real_sequences(archs, max_side=args.max_side, flow_iterations=args.flow_iterations)
    print("## Real sequences (ifcnn_sequences, no ground truth)\n")
    print(table, "\n")
    figure_real(figs, RESULTS / "hdr_real.png")
    print("## Ghosting\n")
    print(ghosting(archs, flow_iterations=args.flow_iterations, max_side=args.max_side, path=RESULTS / "hdr_ghosting.png"))


if __name__ == "__main__":
    main()
