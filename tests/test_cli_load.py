"""The ``snn`` command's ways in (snn/_cli_load.py): builders with weights, .pt2 programs,
training checkpoints, converted records, torch.nn/snn-only pickles, --trust-pickle; and one
clear line for every bad file or argument."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import snn
from snn.cli import build_parser, main
from snn.layers import TimeDistributed


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    """The error is one line (besides ``note:`` lines about what was loaded)."""
    lines = [ln for ln in err.splitlines() if not ln.startswith("note: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return err


def _spiking_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        TimeDistributed(nn.Linear(6, 8)),
        snn.LIF(0.8, reset="hard"),
        TimeDistributed(nn.Linear(8, 3)),
        snn.LIF(0.9, reset="hard"),
    )


class ForeignNet(nn.Module):
    """A class outside torch.nn and snn: its pickle needs --trust-pickle."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(x)


class _Payload:
    """Unpickling this touches a file: the stand-in for code a hostile file would run."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.fixture
def files(tmp_path):
    torch.save(_spiking_model(), tmp_path / "m.pt")
    torch.save(torch.rand(5, 2, 6) * 2, tmp_path / "x.pt")
    return tmp_path


# -- one line per error, naming the file or argument and the fix -------------------------------


def test_text_file_as_model_is_one_line(capsys, files):
    (files / "notes.pt").write_text("not a model\n")
    code, _, err = _run(
        capsys, "convert", files / "notes.pt", "--data", files / "x.pt", "--out", files / "s.pt"
    )
    assert code == 2 and "notes.pt" in _one_line(err) and "not a PyTorch file" in err


def test_truncated_file_names_the_file(capsys, files):
    data = (files / "m.pt").read_bytes()
    (files / "cut.pt").write_bytes(data[: len(data) // 2])
    code, _, err = _run(capsys, "energy", files / "cut.pt", "--input", files / "x.pt")
    assert code == 2 and "cut.pt" in _one_line(err) and "truncated or corrupt" in err
    code, _, err = _run(capsys, "energy", files / "m.pt", "--input", files / "cut.pt")
    assert code == 2 and "--input" in _one_line(err) and "cut.pt" in err


def test_nir_show_on_a_model_says_what_to_do(capsys, files):
    pytest.importorskip("nir")
    code, _, err = _run(capsys, "nir", "show", files / "m.pt")
    assert code == 2 and "not a NIR file" in _one_line(err)
    assert f"snn nir export {files / 'm.pt'}" in err and "signature" not in err


def test_float64_numpy_input_is_cast_and_a_wrong_shape_names_the_layer(capsys, files):
    rng = np.random.default_rng(0)
    np.save(files / "x64.npy", rng.random((5, 2, 6)) * 2)  # numpy's default float64
    code, out, err = _run(capsys, "energy", files / "m.pt", "--input", files / "x64.npy")
    assert code == 0, err
    assert "Energy on cmos45_fp32" in out
    assert "note: --input" in err and "holds float64; cast to the model's float32" in err
    np.savez(files / "bad.npz", x=rng.random((5, 2, 7)))
    code, _, err = _run(capsys, "energy", files / "m.pt", "--input", files / "bad.npz")
    assert code == 2 and "layer '0.0' (Linear, expects in_features=6)" in _one_line(err)
    assert "bad.npz" in err and "(5, 2, 7)" in err


def test_training_checkpoint_rebuilds_the_model(capsys, files):
    from snn.training.checkpoint import save_checkpoint

    model = snn.models.create_model("rsnn_shd", hidden=(8,))
    config = {"dataset": "shd", "model": "rsnn_shd", "model_kwargs": {"hidden": [8]}}
    save_checkpoint(files / "last.pt", {"model": model.state_dict(), "config": config})
    torch.save(torch.rand(4, 2, 700), files / "spikes.pt")
    code, out, err = _run(capsys, "energy", files / "last.pt", "--input", files / "spikes.pt")
    assert code == 0, err
    assert "rebuilt rsnn_shd" in err and "Energy on" in out
    # a checkpoint whose model is not in the registry says how to rebuild it
    config["model"] = "my_net"
    save_checkpoint(files / "other.pt", {"model": model.state_dict(), "config": config})
    code, _, err = _run(capsys, "energy", files / "other.pt", "--input", files / "spikes.pt")
    assert code == 2 and "'my_net'" in _one_line(err) and "--weights" in err


def test_train_missing_files_lists_every_file(capsys, tmp_path):
    pytest.importorskip("snn.training")
    code, _, err = _run(capsys, "train", "nmnist", "--root", tmp_path)
    assert code == 2
    first, *details = err.strip().splitlines()
    assert "place them there:" in first
    assert any("Train.zip" in line and "https://" in line and "MD5" in line for line in details)


def test_out_into_a_missing_folder_is_refused(capsys, files):
    for argv in (
        ("convert", files / "m.pt", "--data", files / "x.pt", "--out", files / "no" / "s.pt"),
        ("nir", "export", files / "m.pt", "--input", files / "x.pt", "--out", files / "no/m.nir"),
        ("energy", files / "m.pt", "--input", files / "x.pt", "--json", files / "no" / "e.json"),
    ):
        code, _, err = _run(capsys, *argv)
        assert code == 2 and "does not exist" in _one_line(err) and "mkdir" in err
    assert not (files / "no").exists()


def test_convert_help_documents_every_option():
    sub = next(a for a in build_parser()._actions if hasattr(a, "choices") and a.choices)
    text = " ".join(sub.choices["convert"].format_help().split())
    for word in (
        "--timesteps",
        "--method",
        "robust",
        "--percentile",
        "--calibrate",
        "membrane",
        "Rueckauer",
        "--weights",
        "--trust-pickle",
    ):
        assert word in text, word
    assert "could run code" in text or "runs whatever code" in text


# -- ways in -----------------------------------------------------------------------------------


def test_foreign_pickle_is_refused_unless_trusted(capsys, files):
    torch.save(ForeignNet(), files / "foreign.pt")
    torch.save(torch.rand(4, 6), files / "x2.pt")
    code, _, err = _run(capsys, "energy", files / "foreign.pt", "--input", files / "x2.pt")
    assert code == 2 and "ForeignNet" in _one_line(err) and "--trust-pickle" in err
    code, _, err = _run(
        capsys, "energy", files / "foreign.pt", "--trust-pickle", "--input", files / "x2.pt"
    )
    assert code == 0, err


def test_hostile_pickle_runs_nothing(capsys, files):
    marker = files / "pwned"
    with open(files / "evil.pt", "wb") as f:
        torch.save({"weight": _Payload(marker)}, f, pickle_module=pickle)
    code, _, err = _run(capsys, "energy", files / "evil.pt", "--input", files / "x.pt")
    assert code == 2 and "could run code" in _one_line(err)
    assert not marker.exists()
    code, _, err = _run(
        capsys, "energy", "nir_cuba_rsnn", "--weights", files / "evil.pt", "--input", files / "x.pt"
    )
    assert code == 2 and not marker.exists()


def test_zoo_name_and_builder_with_state_dict(capsys, files):
    model = snn.models.create_model("rsnn_shd", hidden=(8,))
    torch.save(model.state_dict(), files / "sd.pt")
    torch.save(torch.rand(4, 2, 700), files / "spikes.pt")
    kwargs = json.dumps({"hidden": [8]})
    for spec in ("rsnn_shd", "snn.models.recurrent:rsnn_shd"):
        code, out, err = _run(
            capsys,
            "energy",
            spec,
            "--model-kwargs",
            kwargs,
            "--weights",
            files / "sd.pt",
            "--input",
            files / "spikes.pt",
        )
        assert code == 0, err
        assert "Energy on" in out
    code, _, err = _run(
        capsys, "energy", "rsnn_shd", "--weights", files / "sd.pt", "--input", files / "spikes.pt"
    )  # default width: weights do not fit
    assert code == 2 and "do not fit the model" in _one_line(err)
    code, _, err = _run(capsys, "energy", "no_such.module:fn", "--input", files / "spikes.pt")
    assert code == 2 and "cannot import module 'no_such.module'" in _one_line(err)


def test_pt2_program(capsys, files):
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    batch = torch.export.Dim("batch")
    program = torch.export.export(ann, (torch.rand(4, 6),), dynamic_shapes=({0: batch},))
    torch.export.save(program, files / "ann.pt2")
    torch.save(torch.rand(3, 6), files / "x3.pt")
    code, out, err = _run(capsys, "energy", files / "ann.pt2", "--input", files / "x3.pt")
    assert code == 0, err
    assert "Energy on" in out and "no spiking neurons" in out and "SNN on" not in out
    code, _, err = _run(
        capsys, "convert", files / "ann.pt2", "--data", files / "x3.pt", "--out", files / "s.pt"
    )
    assert code == 2 and "holds operations, not layers" in _one_line(err) and "--weights" in err


@pytest.mark.slow
def test_convert_output_flows_into_energy_and_nir(capsys, files):
    pytest.importorskip("nir")
    from snn.demo.models import cnn

    torch.manual_seed(0)
    ann = cnn(width=4).eval()
    torch.save(ann.state_dict(), files / "cnn.pt")
    x = torch.rand(16, 1, 8, 8)
    torch.save(x, files / "calib.pt")
    kwargs = json.dumps({"width": 4})
    code, out, err = _run(
        capsys,
        "convert",
        "snn.demo.models:cnn",
        "--model-kwargs",
        kwargs,
        "--weights",
        files / "cnn.pt",
        "--data",
        files / "calib.pt",
        "--out",
        files / "snn.pt",
    )
    assert code == 0, err
    assert "snn energy snn.demo.models:cnn --weights" in out
    code, out, err = _run(
        capsys,
        "energy",
        "snn.demo.models:cnn",
        "--model-kwargs",
        kwargs,
        "--weights",
        files / "snn.pt",
        "--input",
        files / "calib.pt",
    )
    assert code == 0, err
    code, _, err = _run(
        capsys,
        "nir",
        "export",
        "snn.demo.models:cnn",
        "--model-kwargs",
        kwargs,
        "--weights",
        files / "snn.pt",
        "--input",
        files / "calib.pt",
        "--out",
        files / "snn.nir",
    )
    assert code == 2 and "layer 'graph." in _one_line(err) and "(IFActivation)" in err
    assert not (files / "snn.nir").exists()


def test_nir_export_of_zoo_models(capsys, files):
    pytest.importorskip("nir")
    torch.save(torch.rand(3, 1, 12), files / "braille.pt")
    code, out, err = _run(
        capsys,
        "nir",
        "export",
        "nir_cuba_rsnn",
        "--input",
        files / "braille.pt",
        "--out",
        files / "cuba.nir",
    )
    assert code == 0, err
    assert (files / "cuba.nir").is_file() and "nodes" in out
    # plif_nmnist's forward checks its input's shape (fx cannot trace it): it is read from a
    # run; batch norms fold into their convolutions, dropout is the identity at inference and
    # the voting layer is linear, so the refusal names only its max pooling, which NIR lacks
    torch.save(torch.rand(2, 1, 2, 34, 34), files / "frames.pt")
    code, _, err = _run(
        capsys,
        "nir",
        "export",
        "plif_nmnist",
        "--model-kwargs",
        '{"channels": 4, "hidden": 8}',
        "--input",
        files / "frames.pt",
        "--out",
        files / "plif.nir",
    )
    assert code == 2 and "layer 'features.2.0' (MaxPool2d)" in _one_line(err)
    assert "no max pooling" in err and "'features.5.0' (MaxPool2d)" in err
    assert "cannot trace" not in err and "BatchNorm" not in err and "Voting" not in err
    assert "TimeConsistentDropout" not in err


def test_unknown_target_names_the_flag(capsys, files):
    code, _, err = _run(
        capsys, "energy", files / "m.pt", "--input", files / "x.pt", "--ann-target", "gpu9000"
    )
    assert code == 2 and "--ann-target 'gpu9000'" in _one_line(err) and "loihi" in err
