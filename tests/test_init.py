"""``import snn``: the everyday API at once, the heavier subpackages on first use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import snn

REPO = Path(__file__).resolve().parents[1]


def test_import_leaves_the_heavy_subpackages_for_first_use():
    code = ("import json, sys, snn; lazy = [f'snn.{n}' for n in snn._LAZY]; "
            "before = [m for m in lazy if m in sys.modules]; snn.energy.count_ops; "
            "print(json.dumps([before, 'snn.energy' in sys.modules, "
            "'snn.cpu_kernels.loops' in sys.modules, 'numba' in sys.modules]))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO),
                                                       os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    before, energy_after, loops, numba = json.loads(out.splitlines()[-1])
    assert before == [] and energy_after
    assert not loops and not numba  # the kernels and numba load on the first fused call


def test_lazy_subpackages_are_reachable_as_attributes():
    for name in ("converters", "energy"):
        assert getattr(snn, name).__name__ == f"snn.{name}"
