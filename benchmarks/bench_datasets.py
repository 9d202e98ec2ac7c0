"""Event readers and frame integration against peer libraries, in one process.

Readers: ``snn.datasets.io`` vs expelliarmus (C) on EVT 2.0, EVT 3.0 and DAT files built by
tiling the real sample recordings (time shifted so the streams stay monotonic).
Frames: ``snn.datasets.transforms.to_frame`` vs ``tonic.transforms.ToFrame`` on the 640x480
EVT 2.0 recording. Prints events/s and ratios; writes JSON to ``benchmarks/results/``.

Usage: ``python benchmarks/bench_datasets.py [--fixtures DIR] [--repeat N] [--out FILE]``
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snn.datasets.io import read_dat, read_evt2, read_evt3  # noqa: E402
from snn.datasets.transforms import to_frame  # noqa: E402


def find_fixtures(given: str | None) -> Path:
    if given:
        return Path(given)
    for parent in [ROOT, *ROOT.parents]:
        candidate = parent.parent / "shared" / "fixtures" / "events"
        if candidate.is_dir():
            return candidate
    sys.exit("sample recordings not found; pass --fixtures DIR")


def header_end(data: bytes) -> int:
    pos = 0
    while pos < len(data) and data[pos : pos + 1] == b"%":
        pos = data.index(b"\n", pos) + 1
    return pos


def tile_evt2(src: Path, dst: Path, copies: int) -> None:
    data = src.read_bytes()
    h = header_end(data)
    words = np.frombuffer(data[h:], dtype="<u4")
    th = (words >> 28) == 8
    raw = words[th] & 0x0FFFFFFF
    span = int(raw.max() - raw.min()) + 1
    parts = []
    for k in range(copies):
        w = words.copy()
        w[th] = (8 << 28) | (raw + k * span)
        parts.append(w)
    dst.write_bytes(data[:h] + np.concatenate(parts).tobytes())


def tile_evt3(src: Path, dst: Path, copies: int) -> None:
    # Each copy restarts TIME_HIGH lower than where the last ended: a 24-bit wrap, which both
    # decoders handle, so the decoded stream stays monotonic.
    data = src.read_bytes()
    h = header_end(data)
    dst.write_bytes(data[:h] + data[h:] * copies)


def tile_dat(src: Path, dst: Path, copies: int) -> None:
    data = src.read_bytes()
    h = header_end(data) + 2
    rec = np.frombuffer(data[h:], dtype=[("t", "<u4"), ("d", "<u4")])
    span = int(rec["t"].max()) + 1
    parts = []
    for k in range(copies):
        r = rec.copy()
        r["t"] += k * span
        parts.append(r)
    dst.write_bytes(data[:h] + np.concatenate(parts).tobytes())


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up (JIT load, page cache)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_readers(fixtures: Path, repeat: int, tmp: Path) -> list[dict]:
    try:
        from expelliarmus import Wizard
    except ImportError:
        print("expelliarmus not installed: reader comparison skipped")
        return []
    cases = [
        ("evt2", "gen3_sample_evt2.raw", tile_evt2, 20, read_evt2),
        ("evt3", "gen4_pedestrians_evt3.raw", tile_evt3, 400, read_evt3),
        ("dat", "ncars_sample_td.dat", tile_dat, 1000, read_dat),
    ]
    rows = []
    for enc, name, tile, copies, ours in cases:
        path = tmp / f"tiled_{name}"
        tile(fixtures / name, path, copies)
        wizard = Wizard(encoding=enc)
        n_ours = ours(path).events.size
        n_theirs = len(wizard.read(path))
        t_ours = best_time(lambda p=path, f=ours: f(p), repeat)
        t_theirs = best_time(lambda p=path, w=wizard: w.read(p), repeat)
        row = {
            "format": enc,
            "source": f"{name} x{copies}",
            "bytes": path.stat().st_size,
            "events_ours": int(n_ours),
            "events_expelliarmus": int(n_theirs),
            "ours_Mev_per_s": n_ours / t_ours / 1e6,
            "expelliarmus_Mev_per_s": n_theirs / t_theirs / 1e6,
            "speedup": (n_ours / t_ours) / (n_theirs / t_theirs),
            "expelliarmus_version": importlib.metadata.version("expelliarmus"),
        }
        rows.append(row)
        print(
            f"{enc:5s} {n_ours:>10,d} events  ours {row['ours_Mev_per_s']:7.1f} M ev/s   "
            f"expelliarmus {row['expelliarmus_Mev_per_s']:7.1f} M ev/s   "
            f"ratio {row['speedup']:.2f}x"
        )
    return rows


def bench_frames(fixtures: Path, repeat: int) -> list[dict]:
    import tonic
    import tonic.transforms as TT

    events = read_evt2(fixtures / "gen3_sample_evt2.raw").events
    size = (640, 480, 2)
    rows = []
    for params in (
        {"time_window": 1000},
        {"time_window": 5000, "overlap": 1000},
        {"event_count": 20000},
        {"n_time_bins": 10},
        {"n_event_bins": 10, "overlap": 0.2},
    ):
        ours = to_frame(events, size, **params)
        ref = TT.ToFrame(sensor_size=size, **params)(events.copy())
        if not np.array_equal(ours, ref):
            raise AssertionError(f"frames differ from tonic for {params}")
        t_ours = best_time(lambda p=params: to_frame(events, size, **p), repeat)
        t_tonic = best_time(lambda p=params: TT.ToFrame(sensor_size=size, **p)(events), repeat)
        row = {
            "params": params,
            "events": int(events.size),
            "frames": int(ours.shape[0]),
            "ours_Mev_per_s": events.size / t_ours / 1e6,
            "tonic_Mev_per_s": events.size / t_tonic / 1e6,
            "speedup": t_tonic / t_ours,
            "tonic_version": tonic.__version__,
        }
        rows.append(row)
        print(
            f"ToFrame {json.dumps(params):42s} {ours.shape[0]:3d} frames  ours "
            f"{row['ours_Mev_per_s']:7.1f} M ev/s   tonic {row['tonic_Mev_per_s']:6.1f} M ev/s"
            f"   ratio {row['speedup']:.2f}x"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixtures", default=None, help="folder of the sample recordings")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", default=None, help="JSON output (default benchmarks/results/...)")
    args = ap.parse_args()
    fixtures = find_fixtures(args.fixtures)
    import numba

    info = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "load_average_1min_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "repeat": args.repeat,
        "timing": "best of repeat, after one warm-up call; both libraries in this process",
    }
    print(json.dumps(info))
    with tempfile.TemporaryDirectory() as tmp:
        readers = bench_readers(fixtures, args.repeat, Path(tmp))
    frames = bench_frames(fixtures, args.repeat)
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / "datasets_cpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"info": info, "readers": readers, "frames": frames}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
