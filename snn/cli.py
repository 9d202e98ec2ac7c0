"""The ``snn`` command.

Subcommands: ``demo`` (the main job, no download), ``convert`` (ANN to SNN), ``energy``
(operation counts priced on hardware targets), ``nir`` (export/inspect NIR graphs), ``bench``
(the benchmark scripts), ``train`` (the training recipes) and ``info`` (versions and backends).
Errors print one line with the fix; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

EXAMPLES = """\
examples:
  snn demo                       the main job on the 8x8 digits (a few minutes on a CPU)
  snn demo --quick --out report  the same in under a minute
  snn convert cnn.pt --data calib.pt --eval test.pt --out snn.pt
  snn energy model.pt --input x.pt --target loihi --target cmos45_fp32
  snn nir export model.pt --input sample.pt --out model.nir
  snn nir show model.nir
  snn bench --list
  snn info
"""

OPTIONAL_PACKAGES = {
    "numpy": "core",
    "numba": "snn[cpu]: fused CPU time loop",
    "cupy": "snn[cuda12] or snn[cuda13]: CUDA kernels",
    "matplotlib": "snn[viz]: figures",
    "nir": "snn[nir]: NIR export/import",
    "sklearn": "snn[demo]: the demo's digits",
    "tqdm": "snn[demo]: progress bars",
    "h5py": "snn[datasets]: HDF5 datasets",
    "snntorch": "snn[bench]: peer library",
    "norse": "snn[bench]: peer library",
    "spikingjelly": "snn[bench]: peer library",
}
DIST_NAMES = {
    "sklearn": ("scikit-learn",),
    "cupy": ("cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x", "cupy"),
}


class CommandError(ValueError):
    """A command-line mistake; printed as one line."""


# -- helpers ---------------------------------------------------------------------------------


def _version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    for dist in DIST_NAMES.get(module, (module,)):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "installed"


def _load_model(path: str) -> Any:
    import torch
    from torch import nn

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {p}")
    obj = torch.load(p, map_location="cpu", weights_only=False)
    if not isinstance(obj, nn.Module):
        raise CommandError(
            f"{p} holds a {type(obj).__name__}, expected a whole model saved with "
            "torch.save(model, path) (a state_dict has no architecture)"
        )
    return obj.eval()


def _load_data(path: str, what: str) -> tuple[Any, Any]:
    """``(inputs, labels or None)`` from a .pt/.pth (tensor, pair or dict) or .npy/.npz file."""
    import numpy as np
    import torch

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} file not found: {p}")
    if p.suffix == ".npy":
        obj: Any = torch.from_numpy(np.load(p))
    elif p.suffix == ".npz":
        with np.load(p) as z:
            keys = list(z.keys())
            x = z["x"] if "x" in z else z[keys[0]]
            y = z["y"] if "y" in z else (z[keys[1]] if len(keys) > 1 else None)
            obj = (torch.from_numpy(x), None if y is None else torch.from_numpy(y))
    elif p.suffix in (".pt", ".pth"):
        obj = torch.load(p, map_location="cpu", weights_only=True)
    else:
        raise CommandError(f"{what} {p}: expected a .pt, .pth, .npy or .npz file")
    if isinstance(obj, dict):
        keys = [k for k in ("inputs", "x", "data") if k in obj]
        if not keys:
            raise CommandError(f"{what} {p}: a dict needs an 'inputs' (or 'x') entry")
        obj = (obj[keys[0]], obj.get("labels", obj.get("y")))
    if isinstance(obj, tuple | list):
        if len(obj) != 2:
            raise CommandError(f"{what} {p}: expected (inputs, labels), got {len(obj)} items")
        x, y = obj
    else:
        x, y = obj, None
    if not isinstance(x, torch.Tensor):
        raise CommandError(f"{what} {p}: inputs must be a tensor, got {type(x).__name__}")
    if x.is_floating_point() is False:
        x = x.float()
    return x, y


def _write_json(path: str, data: Any) -> None:
    from snn._files import atomic_open

    with atomic_open(path, "w") as f:
        json.dump(data, f, indent=2, default=str)


def _save_torch(obj: Any, path: str) -> None:
    import torch

    from snn._files import atomic_open

    with atomic_open(path) as f:
        torch.save(obj, f)


# -- commands --------------------------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    import torch

    import snn
    from snn.backends import BACKENDS, implementations

    print(f"snn {snn.__version__}  python {platform.python_version()}  torch {torch.__version__}")
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        print(f"CUDA: available (runtime {torch.version.cuda}; {names})")
    else:
        print("CUDA: not available (CPU-only torch build or no GPU)")
    print("backends:")
    for name, backend in sorted(BACKENDS.items(), key=lambda kv: -kv[1].priority):
        neurons = sorted(n for n, b in implementations() if b == name)
        ok = backend.is_available()
        state = "available" if ok else f"missing -> {backend.install_hint}"
        print(f"  {name:7s} on {','.join(backend.devices):28s} {state}")
        print(f"          neurons: {', '.join(neurons) or '-'}")
    print("optional packages:")
    for module, purpose in OPTIONAL_PACKAGES.items():
        version = _version(module)
        print(f"  {module:13s} {version or 'not installed':14s} {purpose}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from snn.demo import DemoConfig, run_demo

    config = DemoConfig.quick(seed=args.seed) if args.quick else DemoConfig(seed=args.seed)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    report = run_demo(
        args.out,
        config,
        device=args.device,
        progress=not (args.no_progress or args.quiet),
        verbose=not args.quiet,
    )
    print(f"summary: {Path(args.out) / 'summary.md'}")
    best = max(report["converted"]["test_accuracy"].items(), key=lambda kv: kv[1])
    print(
        f"CNN {100 * report['ann']['test_accuracy']:.1f}% | converted SNN best "
        f"{100 * best[1]:.1f}% at T={best[0]} | trained SNN "
        f"{100 * report['trained']['test_accuracy'][report['trained']['train_steps']]:.1f}% at "
        f"T={report['trained']['train_steps']}"
    )
    return 0


def _convert(args: argparse.Namespace) -> int:
    from snn.converters import convert, evaluate

    model = _load_model(args.model)
    x, _ = _load_data(args.data, "calibration data")
    snn_model, report = convert(
        model,
        x,
        method=args.method,
        percentile=args.percentile,
        channelwise=args.channelwise,
        steps=args.steps,
        calibration=args.calibrate,
    )
    print(report)
    result = None
    if args.eval:
        xe, ye = _load_data(args.eval, "evaluation data")
        if ye is None:
            raise CommandError(f"--eval {args.eval}: needs labels, (inputs, labels)")
        result = evaluate(model, snn_model, (xe, ye), timesteps=args.timesteps)
        print(result.table())
    _save_torch(snn_model, args.out)
    print(f"converted model saved to {args.out} (load with torch.load(path, weights_only=False))")
    if args.report:
        data = {"conversion": report.to_dict() if hasattr(report, "to_dict") else str(report)}
        if result is not None:
            data["evaluation"] = result.to_dict()
        _write_json(args.report, data)
        print(f"report written to {args.report}")
    return 0


def _energy(args: argparse.Namespace) -> int:
    import torch

    import snn
    from snn.energy import TARGETS, EnergyReport, OpCounter

    if args.list_targets:
        for name, target in TARGETS.items():
            print(f"{name:14s} {getattr(target, 'description', '') or ''}".rstrip())
        return 0
    if not args.model or not args.input:
        raise CommandError("give a model file and --input (or --list-targets)")
    model = _load_model(args.model)
    x, _ = _load_data(args.input, "input")
    counter = OpCounter(model)
    snn.reset(model)
    with counter, torch.no_grad():
        model(x)
    counts = counter.counts()
    results = {}
    for target in args.target or ["cmos45_fp32"]:
        report = EnergyReport(counts, target, ann_target=args.ann_target)
        print(report.to_text())
        print()
        results[target] = report.to_dict()
        if args.figure:
            fig = report.plot()
            fig = getattr(fig, "figure", fig)
            stem = Path(args.figure)
            path = stem if len(args.target or [1]) == 1 else stem.with_stem(f"{stem.stem}_{target}")
            fig.savefig(path)
            import matplotlib.pyplot as plt

            plt.close(fig)
            print(f"figure written to {path}")
    if args.json:
        _write_json(args.json, results)
        print(f"report written to {args.json}")
    return 0


def _nir_export(args: argparse.Namespace) -> int:
    import nir

    from snn.nir import export

    model = _load_model(args.model)
    x, _ = _load_data(args.input, "sample input")
    graph = export(
        model, x, dt=args.dt, discretisation=args.discretisation, allow_any_reset=args.any_reset
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    nir.write(args.out, graph)
    print(f"{len(graph.nodes)} nodes, {len(graph.edges)} edges written to {args.out}")
    return 0


def _nir_show(args: argparse.Namespace) -> int:
    import nir
    import numpy as np

    path = Path(args.file)
    if not path.is_file():
        raise FileNotFoundError(f"NIR file not found: {path}")
    graph = nir.read(str(path))

    def show(g: Any, indent: str) -> None:
        for name, node in g.nodes.items():
            shape = getattr(node, "output_type", {}).get("output")
            shape = "?" if shape is None else tuple(np.asarray(shape).tolist())
            print(f"{indent}{name:20s} {type(node).__name__:10s} {shape}")
            if isinstance(node, nir.NIRGraph):
                show(node, indent + "  ")
        print(f"{indent}edges: {', '.join(f'{a}->{b}' for a, b in g.edges)}")

    show(graph, "")
    return 0


def _benchmarks_dir(given: str | None) -> Path:
    if given:
        d = Path(given)
    else:
        d = Path(__file__).resolve().parents[1] / "benchmarks"
        if not d.is_dir():
            d = Path.cwd() / "benchmarks"
    if not d.is_dir():
        raise CommandError(
            "no benchmarks/ folder found (it is part of the source checkout, not of the "
            "installed package); run from the repository root or pass --dir"
        )
    return d


def _bench(args: argparse.Namespace) -> int:
    folder = _benchmarks_dir(args.dir)
    scripts = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    names = {p.stem.removeprefix("bench_"): p for p in scripts}
    if args.list or not args.name:
        print(f"benchmarks in {folder}:")
        for name, p in names.items():
            doc = ""
            text = p.read_text(encoding="utf-8", errors="replace").lstrip()
            if text.startswith(('"""', "'''")):
                doc = text[3:].split("\n", 1)[0].strip().rstrip('"')
            print(f"  {name:16s} {doc}")
        if not args.name:
            print("run one with: snn bench NAME [script arguments]")
        return 0
    script = names.get(args.name) or names.get(args.name.removeprefix("bench_"))
    if script is None:
        raise CommandError(f"unknown benchmark {args.name!r}; available: {sorted(names)}")
    cmd = [sys.executable, str(script), *args.script_args]
    print("running:", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=folder.parent)


def _train_missing(args: argparse.Namespace) -> int:
    raise CommandError(
        "training recipes (snn.training) are not part of this installation; install the full "
        "package or run from a source checkout that has snn/training"
    )


# -- parser ----------------------------------------------------------------------------------


def _add_demo(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="the main job: convert and train SNNs on the 8x8 digits, report accuracy and energy",
        description="On scikit-learn's 8x8 digits (no download): train a small CNN, convert it "
        "to an SNN, train a spiking CNN with surrogate gradients, compare accuracy against time "
        "steps, estimate energy on hardware targets against the CNN, and write a report folder "
        "(report.json, PNG figures, summary.md).",
    )
    p.add_argument("--out", default="snn-demo-report", help="report folder (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a smaller run of under a minute")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--quiet", action="store_true", help="no step messages either")
    p.set_defaults(func=_demo)


def _add_convert(sub: Any) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a trained ANN (torch.save(model)) into an SNN",
        description="Convert a whole saved model (torch.save(model, path); loading runs pickled "
        "code, so only use files you trust) into a spiking network of IF neurons.",
    )
    p.add_argument("model", help="the ANN, saved with torch.save(model, path)")
    p.add_argument("--data", required=True, help="calibration inputs (.pt/.npy/.npz)")
    p.add_argument("--out", required=True, help="where to save the converted model")
    p.add_argument("--eval", help="(inputs, labels) to measure ANN and SNN accuracy on")
    p.add_argument("--steps", type=int, default=32, help="default time steps of the SNN")
    p.add_argument("--timesteps", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    p.add_argument("--method", default="percentile", choices=["percentile", "robust", "max"])
    p.add_argument("--percentile", type=float, default=99.9)
    p.add_argument("--channelwise", action="store_true", help="one threshold per channel")
    p.add_argument("--calibrate", choices=["bias", "membrane"], default=None)
    p.add_argument("--report", help="write the conversion (and evaluation) report as JSON")
    p.set_defaults(func=_convert)


def _add_energy(sub: Any) -> None:
    p = sub.add_parser(
        "energy",
        help="count a model's operations on an input and price them on hardware targets",
    )
    p.add_argument("model", nargs="?", help="the model, saved with torch.save(model, path)")
    p.add_argument("--input", help="input tensor file (.pt/.npy/.npz), e.g. [T, B, ...]")
    p.add_argument("--target", action="append", help="hardware target (repeatable)")
    p.add_argument("--ann-target", default="cmos45_fp32", help="target of the equivalent ANN")
    p.add_argument("--json", help="write the reports as JSON")
    p.add_argument("--figure", help="write the energy figure (PNG)")
    p.add_argument("--list-targets", action="store_true", help="list the hardware targets")
    p.set_defaults(func=_energy)


def _add_nir(sub: Any) -> None:
    p = sub.add_parser("nir", help="export a model to NIR, or show a NIR file")
    nsub = p.add_subparsers(dest="nir_command", metavar="ACTION", required=True)
    e = nsub.add_parser("export", help="write a saved model as a .nir file")
    e.add_argument("model", help="the model, saved with torch.save(model, path)")
    e.add_argument("--input", required=True, help="a sample input, [T, B, ...]")
    e.add_argument("--out", required=True, help="the .nir file to write")
    e.add_argument("--dt", type=float, default=1.0, help="time step of the time constants")
    e.add_argument("--discretisation", choices=["zoh", "euler"], default="zoh")
    e.add_argument("--any-reset", action="store_true", help="keep non-NIR resets in metadata")
    e.set_defaults(func=_nir_export)
    s = nsub.add_parser("show", help="list the nodes and edges of a .nir file")
    s.add_argument("file")
    s.set_defaults(func=_nir_show)


def _add_bench(sub: Any) -> None:
    p = sub.add_parser("bench", help="list or run the benchmark scripts (benchmarks/)")
    p.add_argument("name", nargs="?", help="benchmark to run (see --list)")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help="arguments for the script")
    p.add_argument("--list", action="store_true", help="list the benchmarks")
    p.add_argument("--dir", help="the benchmarks folder (default: beside the package)")
    p.set_defaults(func=_bench)


def _add_train(sub: Any) -> None:
    try:
        from snn.training.cli import add_train_arguments, run_train
    except ImportError:
        p = sub.add_parser("train", help="train a model (needs snn.training)")
        p.set_defaults(func=_train_missing)
        return
    p = sub.add_parser("train", help="train a reference model on a dataset")
    add_train_arguments(p)
    p.set_defaults(func=run_train)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``snn`` command."""
    parser = argparse.ArgumentParser(
        prog="snn",
        description="Spiking neural networks on PyTorch.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo(sub)
    _add_convert(sub)
    _add_energy(sub)
    _add_nir(sub)
    _add_bench(sub)
    _add_train(sub)
    p = sub.add_parser("info", help="versions, backends and optional packages")
    p.set_defaults(func=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``snn`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"snn {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, RuntimeError, ImportError, KeyError) as err:
        if args.debug:
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = "" if isinstance(err, CommandError) else " (run with --debug for the traceback)"
        if isinstance(err, ModuleNotFoundError) and err.name:
            top = err.name.split(".")[0]
            extra = OPTIONAL_PACKAGES.get(top, "").split(":")[0]
            package = DIST_NAMES.get(top, (top,))[0]
            hint = (
                f"; install it: pip install '{extra}'"
                if extra.startswith("snn[")
                else (f"; install it: pip install {package}")
            )
        print(f"snn {args.command}: error: {message}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
