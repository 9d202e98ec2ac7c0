"""The ``snn`` command."""

from __future__ import annotations

import argparse
import platform
import sys

__all__ = ["main"]


def _info(_: argparse.Namespace) -> int:
    import torch

    import snn
    from snn.backends import BACKENDS

    print(f"snn {snn.__version__}  python {platform.python_version()}  torch {torch.__version__}")
    print(f"CUDA available: {torch.cuda.is_available()}")
    for name, backend in sorted(BACKENDS.items()):
        ok = backend.is_available()
        hint = "" if ok else f"  (missing: {backend.install_hint})"
        print(
            f"backend {name:6s} devices={','.join(backend.devices):24s} "
            f"{'available' if ok else 'unavailable'}{hint}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``snn`` command."""
    parser = argparse.ArgumentParser(
        prog="snn",
        description="Spiking neural networks on PyTorch.",
        epilog="examples:\n  snn info",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("info", help="versions and available backends")
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
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:
        if args.debug:
            raise
        print(f"snn {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
