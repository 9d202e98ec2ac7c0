"""Loading models and data for the ``snn`` command without running code from data files.

A model reaches a command in one of these ways (the ``MODEL`` argument):

- a **builder**: a name in :data:`snn.models.MODELS` (the zoo) or ``package.module:function``,
  called with ``--model-kwargs``; its weights come from ``--weights FILE``, read with
  ``torch.load(weights_only=True)`` (a state dict, a training checkpoint of ``snn train`` or
  a file written by ``snn convert``);
- a **torch.export program** (``.pt2``), read by :func:`torch.export.load` (no pickle);
- a **training checkpoint** of ``snn train``: rebuilt from the model name and options recorded
  in it (registry names only) and its state dict;
- a **converted network** written by ``snn convert``: rebuilt the same way when its ANN came
  from the model registry;
- a **whole model** saved with ``torch.save(model, path)``: read with PyTorch's weights-only
  unpickler, allowing only classes of ``torch.nn`` and ``snn``, so files that reference any
  other code are refused; with ``--trust-pickle`` any pickle loads (and may run code).
"""

from __future__ import annotations

import argparse
import importlib
import json
import pickle
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

__all__ = [
    "CONVERTED_FORMAT",
    "CommandError",
    "add_model_arguments",
    "check_out",
    "load_data",
    "load_model",
    "match_dtype",
    "model_spec",
    "run_model",
]

CONVERTED_FORMAT = "snn-converted-v1"
"""The ``format`` entry of the files ``snn convert`` writes."""

TRUST_HELP = (
    "load a whole pickled model even if it references classes outside torch.nn and snn; "
    "unpickling runs whatever code the file names, so only use this for files you made or "
    "trust (safer: a builder with --weights, or a .pt2 program)"
)


_BUILDER = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
"""``package.module:function``."""


class CommandError(ValueError):
    """A command-line mistake; printed as one line (plus indented details) with its fix."""


def add_model_arguments(
    parser: argparse.ArgumentParser, role: str = "the model", *, programs: bool = True
) -> None:
    """Add ``MODEL``, ``--weights``, ``--model-kwargs`` and ``--trust-pickle`` to ``parser``.

    Args:
        parser: the subcommand's parser.
        role: what MODEL is, for the help text.
        programs: whether the command accepts a ``.pt2`` program (one that only runs the model;
            converting and NIR export need the model's layers).
    """
    program = "a torch.export .pt2 program, " if programs else ""
    parser.add_argument(
        "model",
        metavar="MODEL",
        help=f"{role}: a zoo name (snn.models.MODELS) or package.module:function builder "
        f"(with --weights), {program}a checkpoint of snn train, a file of snn convert, or a "
        "model saved with torch.save(model, path) from torch.nn/snn classes",
    )
    parser.add_argument(
        "--weights",
        metavar="FILE",
        help="state dict, snn train checkpoint or snn convert file for a builder MODEL "
        "(read with torch.load(weights_only=True))",
    )
    parser.add_argument(
        "--model-kwargs",
        metavar="JSON",
        default=None,
        help="keyword arguments of a builder MODEL as JSON, e.g. '{\"channels\": 8}'",
    )
    parser.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)


# -- files ------------------------------------------------------------------------------------


def _allowed_class(name: str) -> Any | None:
    """The class a pickle names, if it is one we allow: a module class (``nn.Module``) of
    ``torch.nn`` or ``snn``, a surrogate of :mod:`snn.surrogate`, or a named tuple (neuron
    state) of ``snn``. The unpickler may call an allowed class with arguments from the file,
    so nothing with side effects (datasets, files, downloads) and no function is allowed;
    resolving the name imports installed code only."""
    from torch import nn

    module, _, attr = name.rpartition(".")
    if not (module == "snn" or module.startswith(("snn.", "torch.nn."))):
        return None
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None
    if not isinstance(obj, type):
        return None
    if issubclass(obj, nn.Module):
        return obj
    if module.startswith("snn") and (module == "snn.surrogate" or issubclass(obj, tuple)):
        return obj
    return None


def _torch_read(path: Path, what: str, trust_pickle: bool = False) -> Any:
    """``torch.load`` with one-line errors; whole models only from torch.nn/snn classes unless
    ``trust_pickle``."""
    import torch

    if not path.is_file():
        raise CommandError(f"{what} {path}: file not found")
    if path.stat().st_size == 0:
        raise CommandError(f"{what} {path}: the file is empty")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(8)
        kind = "an HDF5 file (NIR?)" if head.startswith(b"\x89HDF") else "not a PyTorch file"
        if head[:2] == b"PK":
            kind = "truncated or corrupt (its zip archive has no central directory)"
        raise CommandError(
            f"{what} {path}: {kind}; expected a file written by torch.save (a zip archive)"
        )
    try:
        if trust_pickle:
            return torch.load(path, map_location="cpu", weights_only=False)
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        refused = [n for n in names if _allowed_class(n) is None]
        if refused:
            raise CommandError(
                f"{what} {path}: a pickle referencing {', '.join(refused[:3])}"
                f"{' ...' if len(refused) > 3 else ''}, outside torch.nn and snn; loading it "
                "could run code from the file. Give a builder (zoo name or package.module:"
                "function) with --weights STATE_DICT, a .pt2 program, or pass --trust-pickle "
                "if you trust the file"
            )
        with torch.serialization.safe_globals([_allowed_class(n) for n in names]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except CommandError:
        raise
    except (RuntimeError, pickle.UnpicklingError, EOFError, KeyError, zipfile.BadZipFile) as err:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise CommandError(
            f"{what} {path}: cannot be read, the file is truncated or corrupt ({first}); "
            "write it again with torch.save"
        ) from err


def _parse_kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as err:
        raise CommandError(f"--model-kwargs is not valid JSON ({err})") from None
    if not isinstance(kwargs, dict):
        raise CommandError("--model-kwargs must be a JSON object, e.g. '{\"channels\": 8}'")
    return kwargs


def _builder(spec: str) -> Any | None:
    """The callable a builder spec names, or ``None`` if ``spec`` is no builder."""
    from snn.models import MODELS

    if spec in MODELS:
        return MODELS[spec]
    if not _BUILDER.fullmatch(spec):
        return None
    module, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except ImportError as err:
        raise CommandError(f"MODEL {spec!r}: cannot import module {module!r} ({err})") from None
    except AttributeError:
        raise CommandError(f"MODEL {spec!r}: module {module!r} has no {attr!r}") from None
    if not callable(fn):
        raise CommandError(f"MODEL {spec!r}: {attr!r} is not callable")
    return fn


def _build(spec: str, fn: Any, kwargs: dict[str, Any]) -> Any:
    from torch import nn

    try:
        model = fn(**kwargs)
    except TypeError as err:
        raise CommandError(
            f"MODEL {spec!r}: --model-kwargs do not fit the builder ({err})"
        ) from None
    if not isinstance(model, nn.Module):
        raise CommandError(f"MODEL {spec!r} returned a {type(model).__name__}, not an nn.Module")
    return model


def _is_state_dict(obj: Any) -> bool:
    import torch

    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _load_state(model: Any, state: dict[str, Any], where: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        lines = [s.strip() for s in str(err).splitlines() if s.strip()]
        raise CommandError(
            f"{where}: the weights do not fit the model ({' '.join(lines[1:3])[:240]}); check "
            "MODEL and --model-kwargs"
        ) from None


def _checkpoint_builder(ckpt: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Model name and options recorded in a training checkpoint."""
    config = ckpt.get("config") or {}
    name, kwargs = config.get("model"), dict(config.get("model_kwargs") or {})
    try:
        from snn.training.tasks import TASKS

        task = TASKS.get(config.get("dataset"))
    except ImportError:
        task = None
    if task is not None:
        if not name:
            name = task.model
        if name == task.model:
            kwargs = {**task.model_kwargs, **kwargs}
    return name, kwargs


def _rebuild_converted(ann: Any, record: dict[str, Any], where: str) -> Any:
    import torch

    from snn.converters import convert

    shape = tuple(record.get("sample_shape") or ())
    options = dict(record.get("options") or {})
    options["calibration"] = None  # the state dict holds the calibrated values
    sample = torch.rand(4, *shape, generator=torch.Generator().manual_seed(0))
    net, _ = convert(ann.eval(), sample, **options)  # thresholds are replaced below
    _load_state(net, record["state_dict"], where)
    return net


def model_spec(args: argparse.Namespace) -> str:
    """The source of the model as recorded in ``snn convert``'s output: a registry name, a
    builder spec, or ``file:PATH``."""
    from snn.models import MODELS

    if args.model in MODELS or (_BUILDER.fullmatch(args.model) and not Path(args.model).is_file()):
        return args.model
    return f"file:{args.model}"


def load_model(args: argparse.Namespace, note: Any = None) -> Any:
    """The model the arguments of :func:`add_model_arguments` describe, in eval mode.

    Args:
        args: parsed arguments with ``model``, ``weights``, ``model_kwargs``, ``trust_pickle``
            and optionally ``programs`` (``False``: refuse ``.pt2`` programs).
        note: called with one-line notes for the user (default: print to stderr).

    Raises:
        CommandError: naming the file or argument and the fix.
    """
    from torch import nn

    say = note or (lambda text: print(f"note: {text}", file=sys.stderr))
    spec, trust = args.model, bool(getattr(args, "trust_pickle", False))
    kwargs = _parse_kwargs(getattr(args, "model_kwargs", None))
    weights = getattr(args, "weights", None)
    path = Path(spec)
    fn = None if path.is_file() else _builder(spec)
    if fn is not None:
        model = _build(spec, fn, kwargs)
        if weights is None:
            say(f"no --weights given: {spec} has its initial (untrained) parameters")
            return model.eval()
        return _with_weights(model, spec, Path(weights), trust).eval()
    if kwargs:
        raise CommandError(
            "--model-kwargs only applies to a builder MODEL (zoo name or package.module:function)"
        )
    if path.suffix == ".pt2":
        if not getattr(args, "programs", True):
            raise CommandError(
                f"MODEL {spec}: a torch.export program holds operations, not layers, so it "
                "cannot be converted or exported to NIR; give the model's builder (zoo name or "
                "package.module:function) with --weights STATE_DICT"
            )
        model = _load_program(path)
    else:
        if not path.is_file():
            raise CommandError(
                f"MODEL {spec}: no such file, and not a zoo name (snn.models.MODELS) or a "
                "package.module:function builder"
            )
        model = _from_file(path, trust, say)
    if weights is not None:
        model = _with_weights(model, spec, Path(weights), trust)
    if not isinstance(model, nn.Module):
        raise CommandError(f"MODEL {spec}: holds a {type(model).__name__}, not a model")
    if path.suffix == ".pt2" and weights is None:
        return model  # an exported program has no train/eval modes (it was exported in one)
    return model.eval()


def _load_program(path: Path) -> Any:
    import torch

    if not path.is_file():
        raise CommandError(f"MODEL {path}: file not found")
    try:
        return torch.export.load(path).module()
    except Exception as err:  # torch.export raises many types for bad archives
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise CommandError(
            f"MODEL {path}: not a torch.export program ({first}); write one with "
            "torch.export.save(torch.export.export(model, (x,)), path)"
        ) from None


def _from_file(path: Path, trust: bool, say: Any) -> Any:
    from torch import nn

    obj = _torch_read(path, "MODEL", trust)
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, dict) and obj.get("format") == CONVERTED_FORMAT:
        source = str(obj.get("ann") or "")
        from snn.models import MODELS

        if source not in MODELS:
            shown = source.removeprefix("file:")
            raise CommandError(
                f"MODEL {path}: a network converted from {shown or 'an unnamed ANN'}; a data "
                f"file may not choose the code that rebuilds it, so give that ANN as MODEL and "
                f"this file as --weights: snn ... {shown or 'ANN'} --weights {path}"
            )
        ann = _build(source, MODELS[source], dict(obj.get("model_kwargs") or {}))
        say(f"rebuilt the converted {source} recorded in {path}")
        return _rebuild_converted(ann, obj, f"MODEL {path}")
    if isinstance(obj, dict) and "model" in obj and ("config" in obj or "format" in obj):
        name, kwargs = _checkpoint_builder(obj)
        from snn.models import MODELS

        if name not in MODELS:
            raise CommandError(
                f"MODEL {path}: a training checkpoint whose model {name!r} is not in "
                "snn.models.MODELS; give its builder as MODEL and this file as --weights: "
                f"snn ... package.module:function --weights {path}"
            )
        model = _build(name, MODELS[name], kwargs)
        _load_state(model, obj["model"], f"MODEL {path}")
        say(f"rebuilt {name}({json.dumps(kwargs)}) from the training checkpoint {path}")
        return model
    if _is_state_dict(obj):
        raise CommandError(
            f"MODEL {path}: a state dict (weights without architecture); give the architecture "
            f"as MODEL and this file as weights: snn ... ZOO_NAME_OR_package.module:function "
            f"--weights {path}"
        )
    raise CommandError(
        f"MODEL {path}: holds a {type(obj).__name__}, expected a model, a state dict or a "
        "checkpoint of snn train"
    )


def _with_weights(model: Any, spec: str, path: Path, trust: bool) -> Any:
    obj = _torch_read(path, "--weights", False)
    where = f"--weights {path}"
    if isinstance(obj, dict) and obj.get("format") == CONVERTED_FORMAT:
        return _rebuild_converted(model, obj, where)
    if isinstance(obj, dict) and "model" in obj and _is_state_dict(obj["model"]):
        obj = obj["model"]  # a training checkpoint
    if not _is_state_dict(obj):
        raise CommandError(
            f"{where}: holds a {type(obj).__name__}, expected a state dict (model.state_dict()), "
            "a checkpoint of snn train or a file of snn convert"
        )
    _load_state(model, obj, where)
    return model


# -- data -------------------------------------------------------------------------------------


def load_data(path: str, what: str) -> tuple[Any, Any]:
    """``(inputs, labels or None)`` from a .pt/.pth (tensor, pair or dict) or .npy/.npz file.

    Integer inputs become float32; float64 inputs (NumPy's default) are kept and cast to the
    model's dtype by :func:`run_model`.
    """
    import numpy as np
    import torch

    p = Path(path)
    if not p.is_file():
        raise CommandError(f"{what} {p}: file not found")
    obj: Any
    try:
        if p.suffix == ".npy":
            obj = torch.from_numpy(np.load(p, allow_pickle=False))
        elif p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                if not keys:
                    raise CommandError(f"{what} {p}: the .npz archive is empty")
                x = z["x"] if "x" in z else z[keys[0]]
                y = z["y"] if "y" in z else (z[keys[1]] if len(keys) > 1 else None)
                obj = (torch.from_numpy(x), None if y is None else torch.from_numpy(y))
        elif p.suffix in (".pt", ".pth"):
            obj = _torch_read(p, what)
        else:
            raise CommandError(f"{what} {p}: expected a .pt, .pth, .npy or .npz file")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        if isinstance(err, CommandError):
            raise
        raise CommandError(f"{what} {p}: cannot be read as {p.suffix} ({err})") from None
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
    if not x.is_floating_point():
        x = x.float()
    return x, y


def check_out(path: str | None, flag: str = "--out") -> None:
    """Refuse an output path whose folder does not exist (instead of creating it silently)."""
    if path is None:
        return
    parent = Path(path).expanduser().parent
    if not parent.is_dir():
        raise CommandError(
            f"{flag} {path}: the folder {parent} does not exist; create it first "
            f"(mkdir -p {parent})"
        )
    if Path(path).is_dir():
        raise CommandError(f"{flag} {path}: is a folder; give a file name")


# -- running ----------------------------------------------------------------------------------


def match_dtype(model: Any, x: Any, what: str) -> Any:
    """``x`` cast to the floating-point dtype of the model's parameters (NumPy saves float64
    by default), with a note on stderr when a cast happens."""
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    if param is not None and x.is_floating_point() and x.dtype != param.dtype:
        print(
            f"note: {what} holds {str(x.dtype).removeprefix('torch.')}; cast to the model's "
            f"{str(param.dtype).removeprefix('torch.')}",
            file=sys.stderr,
        )
        x = x.to(param.dtype)
    return x


def run_model(model: Any, x: Any, what: str, **kwargs: Any) -> Any:
    """``model(x, **kwargs)`` with errors that name the failing layer and the input file.

    A floating-point input is cast to the dtype of the model's parameters (NumPy saves float64
    by default); a shape or dtype error inside the model becomes one :class:`CommandError`
    naming the innermost layer that raised it, that layer's input shape and ``what``.
    """
    import torch

    x = match_dtype(model, x, what)
    stack: list[tuple[str, Any, tuple[int, ...]]] = []
    failed: list[tuple[str, Any, tuple[int, ...]]] = []

    def pre(name: str):
        def hook(mod: Any, args: tuple) -> None:
            shape = tuple(args[0].shape) if args and isinstance(args[0], torch.Tensor) else ()
            stack.append((name, mod, shape))

        return hook

    def post(mod: Any, args: tuple, out: Any) -> None:
        if stack:
            stack.pop()

    handles = []
    for name, mod in model.named_modules():
        if name:
            handles.append(mod.register_forward_pre_hook(pre(name)))
            handles.append(mod.register_forward_hook(post))
    try:
        return model(x, **kwargs)
    except (RuntimeError, ValueError, TypeError, IndexError, AssertionError) as err:
        if isinstance(err, CommandError):
            raise
        failed = stack[-1:] if stack else []
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        if isinstance(err, AssertionError) and "Guard failed" in first:
            raise CommandError(
                f"{what} of shape {tuple(x.shape)} does not fit the .pt2 program ({first}); "
                "export it with dynamic_shapes for the batch dimension, or use that shape"
            ) from None
        if failed:
            name, mod, shape = failed[0]
            expects = ""
            for attr in ("in_features", "in_channels", "num_features", "normalized_shape"):
                if hasattr(mod, attr):
                    expects = f", expects {attr}={getattr(mod, attr)}"
                    break
            raise CommandError(
                f"layer {name!r} ({type(mod).__name__}{expects}) failed on an input of shape "
                f"{shape} computed from {what} of shape {tuple(x.shape)}: {first}"
            ) from None
        raise CommandError(
            f"the model failed on {what} of shape {tuple(x.shape)}: {first}"
        ) from None
    finally:
        for h in handles:
            h.remove()
