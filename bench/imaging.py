"""Image engine benchmark: our pipeline vs a naive Pillow pipeline, in the same run.

For a 12-megapixel JPEG and a 1920x1080 JPEG, each made into an 800 px wide WebP at q80,
prints the median time of ``render_output`` and of a naive ``open / resize(LANCZOS) /
save`` with identical encoder settings, and their ratio; then the peak RSS of a worker-like
process rendering a 50-megapixel source (a fresh process, so nothing else inflates it).

    python bench/imaging.py [--runs N] [--check] [--json]

``--check`` exits 1 when a target is missed: >= 2.5x the naive pipeline on 12 MP, peak RSS
under 600 MB on 50 MP.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from pixtools.imaging import build_info, render_output
from pixtools.imaging import encode as engine_encode
from pixtools.jobspec.ops import Convert, Resize

MAX_PIXELS = 50_000_000
TARGET_SPEEDUP_12MP = 2.5
TARGET_RSS_MB = 600
WIDTH = 800
QUALITY = 80
STEPS = [Resize(width=WIDTH), Convert(format="webp", quality=QUALITY)]


def photo_jpeg(width: int, height: int, quality: int = 90) -> bytes:
    """A JPEG with a camera photo's detail: at q90 a 12 MP one is ~3 MB (~2 bits/pixel),
    like a phone's. Smooth synthetic pictures would flatter the engine: the entropy decoding
    that no DCT-domain shrink can skip grows with the bytes."""

    def noise(scale: int, sigma: float) -> Image.Image:
        small = (max(1, width // scale), max(1, height // scale))
        return Image.effect_noise(small, sigma).resize((width, height), Image.Resampling.BICUBIC)

    texture = [Image.blend(noise(64, 80), noise(8, 60), 0.5) for _ in range(3)]
    base = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize((width, height)),
            Image.radial_gradient("L").resize((width, height)),
            texture[0],
        ),
    )
    im = Image.blend(base, Image.merge("RGB", texture), 0.45)
    draw = ImageDraw.Draw(im)
    for i in range(40):
        x, y = (i * 7919) % width, (i * 104729) % height
        r = max(4, min(width, height) // (6 + i % 9))
        colour = (i * 50 % 256, 255 - i * 30 % 256, 90)
        draw.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=max(1, r // 12))
    im = Image.blend(im, noise(1, 30).convert("RGB"), 0.12)  # sensor grain
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality)
    return out.getvalue()


def naive(data: bytes) -> bytes:
    """What most code does: decode everything, Lanczos straight to the target, save."""
    im: Image.Image = Image.open(io.BytesIO(data))
    height = round(im.height * WIDTH / im.width)
    im = im.resize((WIDTH, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    im.save(out, "WEBP", quality=QUALITY, method=engine_encode.WEBP_METHOD)
    return out.getvalue()


def ours(data: bytes) -> bytes:
    rendered = render_output(data, STEPS, max_pixels=MAX_PIXELS)
    assert rendered.data is not None
    return rendered.data


def ceiling(data: bytes, runs: int) -> dict[str, float]:
    """The best ratio any engine could reach with the same encoder settings: the naive time
    over (the cheapest possible decode + the encode alone). The cheapest decode is libjpeg's
    1/8 scale (DC coefficients only), which still entropy-decodes every coefficient: no
    JPEG decoder can skip that. Medians of interleaved runs."""
    with Image.open(io.BytesIO(data)) as probe:
        target = (WIDTH, round(probe.height * WIDTH / probe.width))

    def floor_decode() -> Image.Image:
        im = Image.open(io.BytesIO(data))
        im.draft("RGB", (im.width // 8, im.height // 8))
        im.load()
        return im

    small = floor_decode().resize(target, Image.Resampling.LANCZOS)

    def encode_only() -> None:
        small.save(io.BytesIO(), "WEBP", quality=QUALITY, method=engine_encode.WEBP_METHOD)

    steps: dict[str, Callable[[], object]] = {
        "decode": floor_decode,
        "encode": encode_only,
        "naive": lambda: naive(data),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(runs):
        for name, fn in steps.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    return {
        "floor_decode_ms": med["decode"],
        "encode_ms": med["encode"],
        "naive_ms": med["naive"],
        "ceiling": med["naive"] / (med["decode"] + med["encode"]),
    }


def compare(data: bytes, runs: int) -> dict[str, float]:
    """Median wall and CPU seconds of ours and naive, runs interleaved so that load from
    other processes on the machine hits both alike."""
    ours(data), naive(data)  # warm up: plugin imports, codec init, caches
    wall: dict[str, list[float]] = {"ours": [], "naive": []}
    cpu: dict[str, list[float]] = {"ours": [], "naive": []}
    for _ in range(runs):
        for name, fn in (("ours", ours), ("naive", naive)):
            w, c = time.perf_counter(), time.process_time()
            fn(data)
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    return {
        "ours_ms": statistics.median(wall["ours"]) * 1000,
        "naive_ms": statistics.median(wall["naive"]) * 1000,
        "speedup": statistics.median(wall["naive"]) / statistics.median(wall["ours"]),
        "ours_cpu_ms": statistics.median(cpu["ours"]) * 1000,
        "naive_cpu_ms": statistics.median(cpu["naive"]) * 1000,
        "cpu_speedup": statistics.median(cpu["naive"]) / statistics.median(cpu["ours"]),
    }


# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child would report the
# parent's peak (this script holds a 50 MP image while it makes the file).
_RSS_CHILD = """
import sys
from pixtools.imaging import render_output
from pixtools.jobspec.ops import Convert, Resize
data = open(sys.argv[1], "rb").read()
out = render_output(data, {steps}, max_pixels=50_000_000)
assert out.data
status = open("/proc/self/status").read()
print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
"""


def peak_rss_mb(path: Path, steps: str) -> float:
    """Peak RSS (MB) of a fresh Python process that imports the engine and renders once."""
    code = _RSS_CHILD.format(steps=steps)
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    return int(result.stdout.strip()) / 1024  # kB -> MB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per case (median)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument(
        "--webp-method",
        type=int,
        choices=range(7),
        help="try another libwebp method (both pipelines; the engine's default otherwise)",
    )
    args = parser.parse_args()
    if args.webp_method is not None:
        engine_encode.WEBP_METHOD = args.webp_method

    info = build_info()
    print(
        f"Pillow {info['pillow_version']} ({info['distribution']}), Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs; transform: JPEG -> {WIDTH} px wide "
        f"WebP q{QUALITY} (method {engine_encode.WEBP_METHOD}); median of {args.runs} runs"
    )
    results: dict[str, Any] = {}
    cases = {"12MP (4000x3000)": (4000, 3000), "1080p (1920x1080)": (1920, 1080)}
    for name, (width, height) in cases.items():
        data = photo_jpeg(width, height)
        r: dict[str, Any] = compare(data, args.runs)
        results[name] = r
        r["source_mb"] = len(data) / 1e6
        print(
            f"  {name:<18} {len(data) / 1e6:.1f} MB  ours {r['ours_ms']:6.1f} ms   "
            f"naive {r['naive_ms']:6.1f} ms   speedup {r['speedup']:4.2f}x   "
            f"(CPU time: {r['ours_cpu_ms']:.1f} vs {r['naive_cpu_ms']:.1f} ms, "
            f"{r['cpu_speedup']:.2f}x)"
        )
        c = r["ceiling"] = ceiling(data, args.runs)
        print(
            f"  {'':<18} ceiling: naive {c['naive_ms']:.1f} ms / (entropy-decode floor "
            f"{c['floor_decode_ms']:.1f} ms + encode alone {c['encode_ms']:.1f} ms) = "
            f"{c['ceiling']:.2f}x at most, with these encoder settings"
        )

    with tempfile.TemporaryDirectory() as tmp:
        jpeg_path = Path(tmp) / "50mp.jpg"
        png_path = Path(tmp) / "50mp.png"
        big = photo_jpeg(8660, 5773)  # 49,994,180 pixels
        jpeg_path.write_bytes(big)
        with Image.open(io.BytesIO(big)) as im:
            im.save(png_path, "PNG", compress_level=1)
        del big
        webp = "[Resize(width=800), Convert(format='webp', quality=80)]"
        heavy = "[Resize(width=4000), Convert(format='jpeg', quality=85)]"
        rss = {
            "50MP JPEG -> 800 px WebP": peak_rss_mb(jpeg_path, webp),
            "50MP JPEG -> 4000 px JPEG": peak_rss_mb(jpeg_path, heavy),
            "50MP PNG -> 800 px WebP": peak_rss_mb(png_path, webp),
        }
    for name, mb in rss.items():
        print(f"  peak RSS {name:<26} {mb:6.0f} MB")
    results["peak_rss_mb"] = rss

    speedup = results["12MP (4000x3000)"]["speedup"]
    worst_rss = max(rss.values())
    ok = speedup >= TARGET_SPEEDUP_12MP and worst_rss < TARGET_RSS_MB
    print(
        f"targets: 12MP speedup {speedup:.2f}x (>= {TARGET_SPEEDUP_12MP}x) "
        f"{'ok' if speedup >= TARGET_SPEEDUP_12MP else 'MISSED'}; "
        f"peak RSS {worst_rss:.0f} MB (< {TARGET_RSS_MB} MB) "
        f"{'ok' if worst_rss < TARGET_RSS_MB else 'MISSED'}"
    )
    if args.json:
        print(json.dumps({"build": info, "results": results}, indent=2))
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
