"""The ``snn`` subcommands that take a model: ``convert``, ``energy`` and ``nir``.

Models come in through ``snn._cli_load`` (no code runs from a data file unless
``--trust-pickle`` says so); every mistake is a ``CommandError`` naming
the file, argument or layer and the fix.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from snn._cli_load import (
    CONVERTED_FORMAT,
    TRUST_HELP,
    CommandError,
    add_model_arguments,
    check_out,
    load_data,
    load_model,
    match_dtype,
    model_spec,
    run_model,
)

__all__ = ["add_convert", "add_energy", "add_nir"]


def _write_json(path: str, data: Any) -> None:
    from snn._files import atomic_open

    with atomic_open(path, "w") as f:
        json.dump(data, f, indent=2, default=str)


def _save_torch(obj: Any, path: str) -> None:
    import torch

    from snn._files import atomic_open

    with atomic_open(path) as f:
        torch.save(obj, f)


def _convert(args: argparse.Namespace) -> int:
    from snn.converters import convert, evaluate

    check_out(args.out)
    check_out(args.report, "--report")
    model = load_model(args)
    x, _ = load_data(args.data, "--data")
    x = match_dtype(model, x, f"--data {args.data}")
    run_model(model, x[:2], f"--data {args.data}")
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
        xe, ye = load_data(args.eval, "--eval")
        if ye is None:
            raise CommandError(f"--eval {args.eval}: needs labels, (inputs, labels)")
        xe = match_dtype(model, xe, f"--eval {args.eval}")
        result = evaluate(model, snn_model, (xe, ye), timesteps=args.timesteps)
        print(result.table())
    record = {
        "format": CONVERTED_FORMAT,
        "ann": model_spec(args),
        "model_kwargs": json.loads(args.model_kwargs) if args.model_kwargs else {},
        "options": {
            "method": args.method,
            "percentile": args.percentile,
            "channelwise": args.channelwise,
            "steps": args.steps,
        },
        "sample_shape": list(x.shape[1:]),
        "state_dict": snn_model.state_dict(),
    }
    _save_torch(record, args.out)
    source = record["ann"]
    how = (
        f"snn energy {args.out} --input X"
        if source in _model_names()
        else f"snn energy {source.removeprefix('file:')} --weights {args.out} --input X"
        + (" --trust-pickle" if args.trust_pickle else "")
    )
    print(f"converted model saved to {args.out} (weights and recipe, no pickled code; use: {how})")
    if args.report:
        data = {"conversion": report.to_dict() if hasattr(report, "to_dict") else str(report)}
        if result is not None:
            data["evaluation"] = result.to_dict()
        _write_json(args.report, data)
        print(f"report written to {args.report}")
    return 0


def _model_names() -> set[str]:
    from snn.models import MODELS

    return set(MODELS)


def _energy(args: argparse.Namespace) -> int:
    import torch

    import snn
    from snn.energy import TARGETS, EnergyReport, OpCounter, load_target
    from snn.energy.report import figure_sources, plot_reports

    if args.list_targets:
        for name, target in TARGETS.items():
            print(f"{name:14s} {getattr(target, 'description', '') or ''}".rstrip())
        return 0
    if not args.model or not args.input:
        raise CommandError("give a MODEL and --input FILE (or --list-targets)")

    def target(name: str, flag: str) -> Any:
        if name in TARGETS:
            return TARGETS[name]
        if Path(name).is_file():
            return load_target(name)
        raise CommandError(
            f"{flag} {name!r}: unknown hardware target; known: {', '.join(TARGETS)}, or a "
            ".json/.toml file of your own (see snn.energy.load_target)"
        )

    targets = [target(name, "--target") for name in args.target or ["cmos45_fp32"]]
    ann_target = target(args.ann_target, "--ann-target")
    check_out(args.json, "--json")
    check_out(args.figure, "--figure")
    model = load_model(args)
    x, _ = load_data(args.input, "--input")
    counter = OpCounter(model)
    snn.reset(model)
    with counter, torch.no_grad():
        run_model(model, x, f"--input {args.input}")
    counts = counter.counts()
    reports = [EnergyReport(counts, t, ann_target=ann_target) for t in targets]
    results = {}
    for report in reports:
        print(report.to_text(sources=False))
        print()
        results[report.target.name] = report.to_dict()
    print(figure_sources(reports))
    if args.figure:
        from snn._files import atomic_open

        fig = plot_reports(reports)  # a pyplot-free figure: nothing to close
        with atomic_open(args.figure) as f:
            fig.savefig(f, format=Path(args.figure).suffix.lstrip(".") or "png", dpi=150)
        print(f"figure written to {args.figure}")
    if args.json:
        _write_json(args.json, results)
        print(f"report written to {args.json}")
    return 0


def _nir_export(args: argparse.Namespace) -> int:
    import nir

    from snn.nir import NIRExportError, export

    check_out(args.out)
    model = load_model(args)
    x, _ = load_data(args.input, "--input")
    x = match_dtype(model, x, f"--input {args.input}")
    run_model(model, x, f"--input {args.input}")
    try:
        graph = export(
            model, x, dt=args.dt, discretisation=args.discretisation, allow_any_reset=args.any_reset
        )
    except NIRExportError as err:
        text = str(err).replace("pass allow_any_reset=True", "pass --any-reset")
        text = text.replace("sample_input", "--input")
        raise CommandError(text) from None
    out = Path(args.out)
    tmp = out.with_name(f".{out.name}.partial")
    try:
        nir.write(str(tmp), graph)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"{len(graph.nodes)} nodes, {len(graph.edges)} edges written to {args.out}")
    return 0


def _nir_show(args: argparse.Namespace) -> int:
    import nir
    import numpy as np

    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"{path}: file not found")
    with open(path, "rb") as f:
        head = f.read(8)
    if head != b"\x89HDF\r\n\x1a\n":
        hint = (
            f"; to export a model: snn nir export {path} --input X --out model.nir"
            if path.suffix in (".pt", ".pth", ".pt2") or head.startswith(b"PK")
            else ""
        )
        raise CommandError(
            f"{path}: not a NIR file (NIR graphs are HDF5 files, as snn nir export writes){hint}"
        )
    try:
        graph = nir.read(str(path))
    except Exception as err:  # h5py and nir raise many types for broken files
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise CommandError(
            f"{path}: an HDF5 file that is no readable NIR graph ({first})"
        ) from None

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


CONVERT_DESCRIPTION = """\
Convert a trained ANN into a spiking network of IF neurons (reset by subtraction).

Each ReLU becomes an IF neuron whose threshold is set from the ANN's activations on the
calibration data (--method, --percentile, --channelwise); max pooling becomes a spiking max
pool; the output feeds a non-leaky readout. The SNN's output after T time steps is the mean
readout current, which approaches the ANN's logits as T grows.

The output file holds the converted weights and the recipe to rebuild the network (no
pickled code): a zoo-name MODEL makes it self-contained (snn energy OUT ...); otherwise
give the same MODEL again with --weights OUT.
"""

CONVERT_EXAMPLES = """\
examples:
  snn convert my_pkg.nets:cnn --weights cnn_state.pt --data calib.npz --out snn.pt
  snn convert cnn.pt --data calib.pt --eval test.pt --timesteps 8 32 --out snn.pt
  snn convert cnn.pt --data calib.pt --method max --calibrate bias --out snn.pt
"""


def add_convert(sub: Any) -> None:
    """Add ``snn convert`` to the subparsers ``sub``."""
    p = sub.add_parser(
        "convert",
        help="convert a trained ANN into an SNN of IF neurons",
        description=CONVERT_DESCRIPTION,
        epilog=CONVERT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(p, "the ANN", programs=False)
    p.set_defaults(programs=False)
    p.add_argument(
        "--data",
        required=True,
        metavar="FILE",
        help="calibration inputs [N, ...] (.pt/.npy/.npz; float64 is cast to the model's dtype)",
    )
    p.add_argument(
        "--out", required=True, metavar="FILE", help="the converted network (folder must exist)"
    )
    p.add_argument(
        "--eval", metavar="FILE", help="(inputs, labels) to measure ANN and SNN accuracy on"
    )
    p.add_argument(
        "--steps",
        type=int,
        default=32,
        help="time steps the saved SNN simulates by default (default: %(default)s)",
    )
    p.add_argument(
        "--timesteps",
        type=int,
        nargs="+",
        default=[1, 2, 4, 8, 16, 32, 64],
        metavar="T",
        help="with --eval: the numbers of time steps T at which the SNN's accuracy is reported "
        "(default: 1 2 4 8 16 32 64)",
    )
    p.add_argument(
        "--method",
        default="percentile",
        choices=["percentile", "robust", "max"],
        help="threshold of each layer: 'max' = the largest activation on --data (no clipping, "
        "coarse rates); 'percentile' = the --percentile of the positive activations (clips the "
        "rare largest ones for finer rates); 'robust' = the same percentile method under the "
        "name of Rueckauer et al. 2017 (default: %(default)s)",
    )
    p.add_argument(
        "--percentile",
        type=float,
        default=99.9,
        help="percentile for 'percentile'/'robust', in (0, 100] (default: %(default)s)",
    )
    p.add_argument("--channelwise", action="store_true", help="one threshold per channel")
    p.add_argument(
        "--calibrate",
        choices=["bias", "membrane"],
        default=None,
        help="after conversion, remove each layer's mean error at --steps on --data: 'bias' "
        "adds a constant input current, 'membrane' sets the initial membrane potential "
        "(Li et al., ICML 2021); default: none",
    )
    p.add_argument(
        "--report", metavar="FILE", help="write the conversion (and evaluation) report as JSON"
    )
    p.set_defaults(func=_convert)


def add_energy(sub: Any) -> None:
    """Add ``snn energy`` to the subparsers ``sub``."""
    p = sub.add_parser(
        "energy",
        help="count a model's operations on an input and price them on hardware targets",
        description="Run MODEL on --input, count its operations (synaptic ACs/MACs, neuron "
        "updates, spikes, memory accesses) and price them on each --target, beside the "
        "equivalent ANN on --ann-target. Totals that leave out unpriced or uncounted work are "
        "lower bounds and printed with >=; ratios carry the bound they inherit.",
    )
    p.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help="the model (see snn convert --help for the ways to give one)",
    )
    p.add_argument("--weights", metavar="FILE", help="weights of a builder MODEL")
    p.add_argument("--model-kwargs", metavar="JSON", help="keyword arguments of a builder MODEL")
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)
    p.add_argument("--input", metavar="FILE", help="input (.pt/.npy/.npz), e.g. [T, B, ...]")
    p.add_argument(
        "--target",
        action="append",
        help="hardware target: a name of --list-targets or a .json/.toml file (repeatable; "
        "default: cmos45_fp32)",
    )
    p.add_argument(
        "--ann-target",
        default="cmos45_fp32",
        help="target of the equivalent ANN (default: %(default)s)",
    )
    p.add_argument("--json", metavar="FILE", help="write the reports as JSON")
    p.add_argument(
        "--figure", metavar="FILE", help="write one figure of every target to FILE (e.g. .png)"
    )
    p.add_argument("--list-targets", action="store_true", help="list the hardware targets")
    p.set_defaults(func=_energy)


def add_nir(sub: Any) -> None:
    """Add ``snn nir export|show`` to the subparsers ``sub``."""
    p = sub.add_parser("nir", help="export a model to NIR, or show a NIR file")
    nsub = p.add_subparsers(dest="nir_command", metavar="ACTION", required=True)
    e = nsub.add_parser(
        "export",
        help="write a model as a .nir file",
        description="Write MODEL as a NIR graph; a layer without a NIR node is named in the error.",
    )
    add_model_arguments(e, programs=False)
    e.set_defaults(programs=False)
    e.add_argument("--input", required=True, metavar="FILE", help="a sample input, [T, B, ...]")
    e.add_argument("--out", required=True, metavar="FILE", help="the .nir file to write")
    e.add_argument("--dt", type=float, default=1.0, help="time step of the time constants")
    e.add_argument("--discretisation", choices=["zoh", "euler"], default="zoh")
    e.add_argument(
        "--any-reset",
        action="store_true",
        help="export neurons that reset by subtraction (or not at all), keeping the reset in "
        "node metadata; other simulators will reset to v_reset",
    )
    e.set_defaults(func=_nir_export)
    s = nsub.add_parser("show", help="list the nodes and edges of a .nir file")
    s.add_argument("file")
    s.set_defaults(func=_nir_show)
