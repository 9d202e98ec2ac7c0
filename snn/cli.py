"""The ``snn`` command.

Subcommands: ``demo`` (the main job, no download), ``convert`` (ANN to SNN), ``energy``
(operation counts priced on hardware targets), ``nir`` (export/inspect NIR graphs), ``bench``
(the benchmark scripts), ``train`` (the training recipes) and ``info`` (versions and backends).
Errors print one line with the fix (and, where the fix is a list, such as the files of a
dataset to fetch, that list indented below it); ``--debug`` shows the traceback.

A model is given as a zoo name or ``package.module:function`` builder with ``--weights``, a
``.pt2`` program, a checkpoint of ``snn train``, a file of ``snn convert``, or a whole model
saved with ``torch.save`` from ``torch.nn``/``snn`` classes; any other pickle needs
``--trust-pickle`` (see ``snn/_cli_load.py``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from snn._cli_load import CommandError, check_out
from snn._cli_models import add_convert, add_energy, add_nir

__all__ = ["build_parser", "main"]

EXAMPLES = """\
examples:
  snn demo                       the main job on the 8x8 digits (a few minutes on a CPU)
  snn demo --quick --out report  the same in under a minute
  snn convert my_pkg.nets:cnn --weights cnn_state.pt --data calib.npz --out snn.pt
  snn energy my_pkg.nets:cnn --weights snn.pt --input x.npy --target loihi --figure e.png
  snn energy runs/nmnist/last.pt --input frames.pt     a checkpoint of snn train
  snn nir export nir_cuba_rsnn --weights state.pt --input sample.pt --out model.nir
  snn nir show model.nir
  snn bench energy               writes energy.json in the current folder
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
    takes_out = "--out" in script.read_text(encoding="utf-8", errors="replace")
    given = any(a == "--out" or a.startswith("--out=") for a in args.script_args)
    if args.out and given:
        raise CommandError("give --out once: before the benchmark name or among its arguments")
    if takes_out and not given and not args.record:
        out = Path(args.out or f"{script.stem.removeprefix('bench_')}.json").resolve()
        check_out(str(out))
        cmd += ["--out", str(out)]
    elif args.out:
        raise CommandError(f"benchmark {args.name!r} takes no --out; it prints its results")
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


def _add_bench(sub: Any) -> None:
    p = sub.add_parser("bench", help="list or run the benchmark scripts (benchmarks/)")
    p.add_argument("name", nargs="?", help="benchmark to run (see --list)")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help="arguments for the script")
    p.add_argument("--list", action="store_true", help="list the benchmarks")
    p.add_argument("--dir", help="the benchmarks folder (default: beside the package)")
    p.add_argument(
        "--out",
        help="JSON record to write (default: NAME.json in the current folder)",
    )
    p.add_argument(
        "--record",
        action="store_true",
        help="write to the script's own default, the committed records in benchmarks/results/ "
        "(only to update them on purpose)",
    )
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
    add_convert(sub)
    add_energy(sub)
    add_nir(sub)
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
        lines = [ln.rstrip() for ln in str(err).strip().splitlines() if ln.strip()]
        message = lines[0] if lines else type(err).__name__
        ours = isinstance(err, CommandError) or type(err).__module__.startswith("snn")
        details = lines[1:] if ours else []
        hint = "" if ours else " (run with --debug for the traceback)"
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
        for line in details:  # the fix, when it is a list (files to fetch, ...)
            print(f"  {line.strip()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
