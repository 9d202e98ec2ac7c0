"""``benchmarks/cold_start.py`` summarises each scenario over its repeats (medians, min and
max), and the README table shows the medians with their range."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _run(first: float, compiled: float | None, ran_on: str = "torch") -> dict:
    return {"first_call_s": first, "first_call_ran_on": ran_on, "import_s": 1.0,
            "compiled_elsewhere_after_s": compiled, "runs_on_after_compilation": ran_on}


def _scenario(cold: tuple[float, float], warm: float, compiled_nothing: bool = True) -> dict:
    return {"read_only_install": False, "run_as": "the current user",
            "cold": _run(*cold), "warm": _run(warm, None, "numba"),
            "cache_in_package": True, "cache_in_user_dir": False,
            "warm_process_wrote_no_cache_file": True,
            "warm_process_compiled_nothing": compiled_nothing}


def test_a_scenario_is_summarised_over_its_repeats():
    cold_start = _load("cold_start")
    runs = [_scenario((0.3, 50.0), 0.7), _scenario((0.2, 40.0), 0.9, compiled_nothing=False),
            _scenario((0.5, 45.0), 0.8)]
    sc = cold_start.summarise(runs)
    assert sc["repeats"] == 3 and sc["runs"] == runs
    assert sc["summary"]["cold"]["first_call_s"] == {"median": 0.3, "min": 0.2, "max": 0.5,
                                                     "n": 3}
    assert sc["cold"]["compiled_elsewhere_after_s"] == 45.0
    assert sc["warm"]["first_call_s"] == 0.8 and sc["warm"]["first_call_ran_on"] == "numba"
    assert "compiled_elsewhere_after_s" not in sc["summary"]["warm"]  # None in the runs
    assert sc["warm_process_wrote_no_cache_file"] is True
    assert sc["warm_process_compiled_nothing"] is False  # failed in one run
    assert sc["cache_in_package"] is True


def test_the_readme_row_shows_the_median_and_range():
    cold_start, table = _load("cold_start"), _load("readme_table")
    sc = cold_start.summarise([_scenario((0.3, 50.0), 0.7), _scenario((0.2, 40.0), 0.9)])
    (row,) = table.cold_start_rows({"scenarios": [sc]}, "cold_start_cpu.json")
    assert "median of 2 fresh copies" in row[0]
    assert "cold cache 0.25 s [0.2 s-0.3 s]" in row[1]
    assert "warm cache 0.8 s [0.7 s-0.9 s]" in row[1]
