"""Regenerate jfusion/transforms/_wavelet_filters.py from PyWavelets (offline, dev-only).

Run: ``python tools/gen_wavelet_filters.py``. jfusion itself never imports pywt.
"""

from pathlib import Path

import pywt

NAMES = ["haar"] + [f"db{i}" for i in range(1, 9)] + [f"sym{i}" for i in range(2, 9)] + [
    w for w in pywt.wavelist(kind="discrete") if w.startswith("bior")
]


def main() -> None:
    lines = [
        '"""Wavelet filter banks (dec_lo, dec_hi, rec_lo, rec_hi), generated offline from PyWavelets',
        f"{pywt.__version__} by tools/gen_wavelet_filters.py; do not edit by hand.",
        '"""',
        "",
        "FILTERS: dict[str, tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]]] = {",
    ]
    for n in NAMES:
        w = pywt.Wavelet(n)
        banks = [tuple(float(v) for v in b) for b in (w.dec_lo, w.dec_hi, w.rec_lo, w.rec_hi)]
        lines.append(f"    {n!r}: (")
        for b in banks:
            lines.append("        (" + ", ".join(repr(v) for v in b) + ",),")
        lines.append("    ),")
    lines.append("}")
    out = Path(__file__).resolve().parents[1] / "jfusion" / "transforms" / "_wavelet_filters.py"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out} ({len(NAMES)} wavelets)")


if __name__ == "__main__":
    main()
