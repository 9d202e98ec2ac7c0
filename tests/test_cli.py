"""The ``snn`` command: help, info, one-line errors, convert, energy, nir, bench."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
import torch
from torch import nn

import snn
from snn._cli_load import load_model
from snn.cli import build_parser, main
from snn.layers import TimeDistributed


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_subcommand_with_examples():
    text = build_parser().format_help()
    for command in ("demo", "convert", "energy", "nir", "bench", "train", "info"):
        assert command in text
    assert "examples:" in text and "snn demo --quick" in text


@pytest.mark.slow
def test_console_entry_point_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "snn.cli", "info"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert f"snn {snn.__version__}" in proc.stdout
    assert "torch" in proc.stdout and "backends:" in proc.stdout


def test_info_names_backends_with_install_hints(capsys):
    code, out, _ = _run(capsys, "info")
    assert code == 0
    assert "CUDA:" in out
    from snn.backends import BACKENDS

    for name, backend in BACKENDS.items():
        assert name in out
        if not backend.is_available():
            assert backend.install_hint in out


def test_errors_are_one_line_unless_debug(capsys, tmp_path):
    code, _out, err = _run(capsys, "energy", str(tmp_path / "missing.pt"), "--input", "x.pt")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "no such file" in err and "missing.pt" in err
    torch.save({"weight": torch.zeros(2)}, tmp_path / "sd.pt")
    torch.save(torch.zeros(2, 3), tmp_path / "x.pt")
    code, _, err = _run(
        capsys, "energy", str(tmp_path / "sd.pt"), "--input", str(tmp_path / "x.pt")
    )
    assert code == 2 and "a state dict (weights without architecture)" in err
    assert "--weights" in err and "sd.pt" in err and err.count("\n") == 1
    with pytest.raises(ValueError, match=r"missing\.pt"):
        main(["--debug", "energy", str(tmp_path / "missing.pt"), "--input", "x.pt"])


def _spiking_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        TimeDistributed(nn.Linear(6, 8)),
        snn.LIF(0.8, reset="hard"),
        TimeDistributed(nn.Linear(8, 3)),
        snn.LIF(0.9, reset="hard"),
    )


def test_nir_export_and_show(capsys, tmp_path):
    pytest.importorskip("nir")
    model = _spiking_model()
    torch.save(model, tmp_path / "m.pt")
    x = torch.rand(5, 2, 6) * 2
    torch.save(x, tmp_path / "x.pt")
    out_file = tmp_path / "m.nir"
    code, out, err = _run(
        capsys,
        "nir",
        "export",
        str(tmp_path / "m.pt"),
        "--input",
        str(tmp_path / "x.pt"),
        "--out",
        str(out_file),
    )
    assert code == 0, err
    assert out_file.is_file() and "6 nodes" in out
    loaded = snn.nir.load(out_file)
    snn.reset(model)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    code, out, _ = _run(capsys, "nir", "show", str(out_file))
    assert code == 0 and "LIF" in out and "input->0.0" in out
    model[1].reset = "subtract"
    torch.save(model, tmp_path / "sub.pt")
    code, _, err = _run(
        capsys,
        "nir",
        "export",
        str(tmp_path / "sub.pt"),
        "--input",
        str(tmp_path / "x.pt"),
        "--out",
        str(tmp_path / "s.nir"),
    )
    assert code == 2 and "reset='subtract'" in err
    assert "--any-reset" in err and "allow_any_reset" not in err and err.count("\n") == 1


def test_energy_reports_every_target(capsys, tmp_path):
    model = _spiking_model()
    torch.save(model, tmp_path / "m.pt")
    torch.save(torch.rand(5, 2, 6) * 2, tmp_path / "x.pt")
    code, out, err = _run(
        capsys,
        "energy",
        str(tmp_path / "m.pt"),
        "--input",
        str(tmp_path / "x.pt"),
        "--target",
        "loihi",
        "--target",
        "cmos45_fp32",
        "--json",
        str(tmp_path / "e.json"),
        "--figure",
        str(tmp_path / "e.png"),
    )
    assert code == 0, err
    data = json.loads((tmp_path / "e.json").read_text())
    assert set(data) == {"loihi", "cmos45_fp32"}
    assert data["cmos45_fp32"]["totals"]["total"] > 0
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"  # one file, as named
    assert not list(tmp_path.glob("e_*.png"))
    assert out.count("energy figures used:") == 1  # sources once, not per target
    assert out.count("cmos45_fp32.mac = ") == 1 and out.count("loihi.ac = ") == 1
    # on loihi the MACs of the analog first layer are unpriced: the SNN total is a lower
    # bound and the ratio an upper bound
    loihi = out.split("Energy on cmos45_fp32")[0]
    assert "unpriced (SNN)" in loihi and "ANN / SNN energy: <= " in loihi
    assert data["loihi"]["ratio_bound"] == "<=" and data["cmos45_fp32"]["ratio_bound"] == "="
    code, out, _ = _run(capsys, "energy", "--list-targets")
    assert code == 0 and "loihi" in out and "truenorth" in out


@pytest.mark.slow
def test_convert_saves_a_working_snn(capsys, tmp_path):
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    torch.save(ann, tmp_path / "ann.pt")
    x = torch.rand(64, 6)
    y = ann(x).argmax(1).detach()
    torch.save(x, tmp_path / "calib.pt")
    torch.save((x, y), tmp_path / "test.pt")
    code, _out, err = _run(
        capsys,
        "convert",
        str(tmp_path / "ann.pt"),
        "--data",
        str(tmp_path / "calib.pt"),
        "--eval",
        str(tmp_path / "test.pt"),
        "--out",
        str(tmp_path / "snn.pt"),
        "--timesteps",
        "4",
        "32",
        "--report",
        str(tmp_path / "r.json"),
    )
    assert code == 0, err
    record = torch.load(tmp_path / "snn.pt", weights_only=True)  # no pickled code inside
    assert record["format"] == "snn-converted-v1"
    args = argparse.Namespace(
        model=str(tmp_path / "ann.pt"),
        weights=str(tmp_path / "snn.pt"),
        model_kwargs=None,
        trust_pickle=False,
    )
    snn_model = load_model(args, note=lambda text: None)
    with torch.no_grad():
        agree = (snn_model(x, steps=32).argmax(1) == y).float().mean()
    assert agree > 0.8
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["evaluation"]["ann_accuracy"] == 1.0
    code, _, err = _run(
        capsys,
        "convert",
        str(tmp_path / "ann.pt"),
        "--data",
        str(tmp_path / "calib.pt"),
        "--eval",
        str(tmp_path / "calib.pt"),
        "--out",
        str(tmp_path / "s2.pt"),
    )
    assert code == 2 and "needs labels" in err


@pytest.mark.slow
def test_bench_lists_and_runs_scripts(capfd, monkeypatch, tmp_path):
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "bench_echo.py").write_text(
        '"""Echo its arguments."""\nimport sys\nprint("ARGS", sys.argv[1:])\n'
    )
    code, out, _ = _run(capfd, "bench", "--dir", str(bench), "--list")
    assert code == 0 and "echo" in out and "Echo its arguments." in out
    proc = subprocess.run(
        [sys.executable, "-m", "snn.cli", "bench", "--dir", str(bench), "echo", "--n", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ARGS ['--n', '3']" in proc.stdout
    # a script that writes a record gets --out in the current folder, never its own default
    (bench / "bench_rec.py").write_text(
        '"""Writes a record."""\nimport sys\np = sys.argv[1:]\n'
        'out = p[p.index("--out") + 1] if "--out" in p else "results/rec.json"\n'
        'print("OUT", out)\n'
    )
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["bench", "--dir", str(bench), "rec"]) == 0
    assert f"OUT {work / 'rec.json'}" in capfd.readouterr().out  # the script's own stdout
    assert main(["bench", "--dir", str(bench), "--out", "mine.json", "rec"]) == 0
    assert f"OUT {work / 'mine.json'}" in capfd.readouterr().out
    assert main(["bench", "--dir", str(bench), "--record", "rec"]) == 0  # asked for, on purpose
    assert "OUT results/rec.json" in capfd.readouterr().out
    code = main(["bench", "--dir", str(bench), "--out", str(tmp_path / "no/r.json"), "rec"])
    assert code == 2 and "does not exist" in capfd.readouterr().err
    code = main(["bench", "--dir", str(bench), "nope"])
    assert code == 2 and "unknown benchmark 'nope'" in capfd.readouterr().err


def test_train_is_wired_to_the_training_recipes(capsys):
    import importlib.util

    if importlib.util.find_spec("snn.training") is None:
        code, _, err = _run(capsys, "train")
        assert code == 2 and "snn.training" in err
        return
    import argparse

    from snn.training.cli import run_train

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train_parser = sub.choices["train"]
    assert train_parser.get_default("func") is run_train
