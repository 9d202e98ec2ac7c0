"""Fresh outputs of the CPU engine ask for transparent huge pages, so writing them faults
once per 2 MiB instead of once per 4 KiB where the system allows it (THP ``always`` or
``madvise``)."""

from __future__ import annotations

import resource
from pathlib import Path

import torch

from snn.cpu_kernels.ops import fresh

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _thp_mode() -> str:
    try:
        text = THP.read_text()
    except OSError:
        return "unavailable"
    return text.split("[", 1)[1].split("]", 1)[0] if "[" in text else "unavailable"


def test_fresh_output_has_the_shape_and_dtype_asked_for():
    like = torch.zeros(3, 5, dtype=torch.float64)
    assert fresh(like).shape == (3, 5) and fresh(like).dtype == torch.float64
    assert fresh(like, 7).shape == (7,)
    big = fresh(torch.empty(0), 1 << 22)
    big.fill_(2.0)
    assert float(big.sum()) == 2.0 * (1 << 22)


def test_writing_a_large_fresh_output_takes_few_page_faults():
    like = torch.empty(0)
    n = 16 << 20  # 64 MiB of float32: 16384 pages of 4 KiB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = fresh(like, n)
    t.fill_(1.0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    if _thp_mode() in ("always", "madvise"):
        assert faults < 16384 // 4, f"{faults} page faults for 64 MiB with huge pages"
    else:  # no huge pages here: one fault per small page, as for any allocation
        assert faults <= 16384 + 256
