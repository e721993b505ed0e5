"""Timings and the kill-and-resume check of `jfusion bench` (issue 15's bars).

    PYTHONPATH=$PWD python benchmarks/bench_toolkit.py vifb          # VIFB reproduction: cold run, cached rerun
    PYTHONPATH=$PWD python benchmarks/bench_toolkit.py resume        # 8 methods x 21 VIFB pairs x 13 metrics, SIGKILLed midway

Each run is a fresh `python -m jfusion bench` process, so the wall times include Python and JAX
start-up and every compilation. ``resume`` runs the bench once uninterrupted, then again in a new
folder, killed (SIGKILL) once half of the metric cache entries exist, then resumed; it compares the
tables byte for byte.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("JFUSION_DATA", REPO.parent / "shared" / "data"))
METHODS = ("laplacian", "dwt", "swt", "contrast", "gradient", "ratio", "gff", "mertens")


def _bench(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "jfusion", "bench", *args, "--no-progress"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    p = _bench(args)
    out, _ = p.communicate()
    if p.returncode:
        raise SystemExit(out)
    return time.perf_counter() - t0


def vifb() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = str(REPO / "benchmarks" / "configs" / "vifb.toml")
        cold = _timed([cfg, "--out", tmp])
        warm = _timed([cfg, "--out", tmp])
    print(f"VIFB reproduction (21 pairs x 5 methods x 13 metrics, from files): cold {cold:.1f} s, cached rerun {warm:.1f} s "
          f"(wall, fresh processes, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")


def resume() -> None:
    flags = ["--task", "infrared-visible", "-d", f"vifb={DATA / 'vifb'}", "--metrics",
             "ce,en,mi,psnr,ag,ei,qabf,sd,sf,rmse,ssim,qcb,qcv"]
    for m in METHODS:
        flags += ["-m", m]
    with tempfile.TemporaryDirectory() as tmp:
        clean, killed = Path(tmp) / "clean", Path(tmp) / "killed"
        t_clean = _timed([*flags, "--out", str(clean)])
        p = _bench([*flags, "--out", str(killed)])
        total = 21 * len(METHODS)
        while p.poll() is None and len(list((killed / "cache" / "metrics").rglob("*.json"))) < total // 2:
            time.sleep(0.5)
        p.send_signal(signal.SIGKILL)
        p.wait()
        done = len(list((killed / "cache" / "metrics").rglob("*.json")))
        t_resume = _timed([*flags, "--out", str(killed)])
        a = {q.relative_to(clean / "tables"): q.read_bytes() for q in (clean / "tables").rglob("*") if q.is_file()}
        b = {q.relative_to(killed / "tables"): q.read_bytes() for q in (killed / "tables").rglob("*") if q.is_file()}
        same = a == b
        has_report = (killed / "report.html").exists()
    print(f"8 methods x 21 pairs x 13 metrics: uninterrupted {t_clean:.1f} s; killed after {done}/{total} metric rows, "
          f"resumed in {t_resume:.1f} s; tables identical: {same}; report written: {has_report}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    {"vifb": vifb, "resume": resume}[sys.argv[1] if len(sys.argv) > 1 else "vifb"]()
