"""Generate the README's measured-comparison table from the JSON records in benchmarks/results/.

The table lives in README.md between the marker lines ``<!-- results:begin -->`` and
``<!-- results:end -->``; only that block is rewritten. Every record file is read; its *kind* is
recognised by :func:`record_kind` and turned into table rows by the one function registered for
that kind in :data:`ROWS` (a new kind of record adds one function there). A record of a kind
without a function is named under the table, never dropped silently.

Run from the repository root::

    python benchmarks/readme_table.py            # rewrite the block in README.md
    python benchmarks/readme_table.py --check    # exit 1 if README.md is out of date
    python benchmarks/readme_table.py --print    # print the block
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"

Row = tuple[str, str, str, str]
"""(what, ours, peers in the same run, record)."""


# -- formatting -------------------------------------------------------------------------------
def _s(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 10 else f"{seconds:.0f} s"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ratio(x: float) -> str:
    return f"{x:.2f}x" if x < 10 else f"{x:.0f}x"


def _conditions(threads: Any, load: Any) -> str:
    parts = []
    if threads is not None:
        parts.append(f"{threads} thread{'s' if threads != 1 else ''}")
    if load:
        first = load[0] if isinstance(load, (list, tuple)) else load
        parts.append(f"load {first:.1f}")
    return ", ".join(parts)


# -- one function per record kind -------------------------------------------------------------
_PEER_NAMES = {
    "spikingjelly": "SpikingJelly `LIFNode`",
    "spikingjelly-torch": "SpikingJelly torch loop",
    "snntorch": "snnTorch",
    "norse": "Norse",
    "snn-torch": "our torch loop",
}


def neurons_rows(record: dict, name: str) -> list[Row]:
    """``bench_neurons.py``: the largest size of the record; bytes kept for backward when
    measured for every library."""
    r = max(record["results"], key=lambda x: x["T"] * x["B"] * x["N"])
    libs = r["libraries"]
    ours = libs["snn-fused"]
    env = ", ".join(f"{k}={v}" for k, v in sorted(record.get("env", {}).items()))
    cond = _conditions(record.get("threads"), record.get("load_average"))
    what = (f"LIF forward + backward, T={r['T']}, B={r['B']}, N={r['N']} "
            f"(CPU, {cond}{', ' + env if env else ''}; median of {ours['runs']} runs)")
    peers = ", ".join(
        f"{_PEER_NAMES.get(k, k)} {_s(v['seconds'])} ({_ratio(v['time_over_ours'])})"
        for k, v in libs.items() if k != "snn-fused"
    )
    rows = [(what, _s(ours["seconds"]), peers, f"`{name}`")]
    if all("saved_bytes_per_neuron_step_excluding_input" in v for v in libs.values()) and len(
            libs) > 3:
        kept = ", ".join(
            f"{_PEER_NAMES.get(k, k)} {v['saved_bytes_per_neuron_step_excluding_input']:.2g}"
            for k, v in libs.items() if k != "snn-fused"
        )
        rows.append((
            "bytes kept for backward per neuron-step beyond the input (CPU)",
            f"{ours['saved_bytes_per_neuron_step_excluding_input']:.2g}", kept, f"`{name}`",
        ))
    return rows


def open_neuromorphic_rows(record: dict, name: str) -> list[Row]:
    """``bench_open_neuromorphic.py``: every size."""
    results = record["results"]
    cond = _conditions(record.get("threads"), record.get("load_average"))
    what = (f"Open Neuromorphic setup, `Linear(n, n)` + LIF, batch {record['batch']}, "
            f"T={record['T']}, forward + backward (CPU, {cond})")
    ours = ", ".join(f"n={r['n']}: {_s(r['libraries']['snn-fused']['seconds'])}" for r in results)
    peers = sorted({k for r in results for k in r["libraries"]} - {"snn-fused"},
                   key=list(results[0]["libraries"]).index)
    peer_text = "; ".join(
        f"{_PEER_NAMES.get(p, p)} " + " / ".join(
            _ratio(r["libraries"][p]["time_over_ours"]) for r in results if p in r["libraries"]
        ) for p in peers
    )
    return [(what, ours, peer_text + " (time over ours)", f"`{name}`")]


def converter_single_rows(record: dict, name: str) -> list[Row]:
    """``bench_converter.py``: one seed, one split; accuracy at T=8 per network."""
    rows = []
    for arch, e in record["models"].items():
        m = e["methods"]
        acc = {k: v["accuracy"][str(8)] if str(8) in v["accuracy"] else v["accuracy"][8]
               for k, v in m.items()}
        ours = (f"{_pct(acc['ours: percentile'])} (percentile), "
                f"{_pct(acc['ours: qcfs + membrane calibration'])} (QCFS + calibration; "
                f"ANN {_pct(e['ann_accuracy']['qcfs'])})")
        peers = ", ".join(f"SpikingJelly `{k.split(': ', 1)[1]}` {_pct(v)}"
                          for k, v in acc.items() if k.startswith("spikingjelly"))
        seed = record.get("environment", {}).get("seed", "?")
        rows.append((f"ANN-to-SNN conversion, digits {arch} (one network, seed {seed}, one split; "
                     f"ReLU ANN {_pct(e['ann_accuracy']['relu'])}), accuracy at T=8",
                     ours, peers, f"`{name}`"))
    return rows


def _mean_sd(stats: dict) -> str:
    return f"{100 * stats['mean']:.1f} ± {100 * stats['sd']:.1f}"


def converter_seeds_rows(record: dict, name: str) -> list[Row]:
    """``bench_converter_seeds.py``: per architecture, accuracy at T=8 (mean ± sd over seeds)
    and every T where a SpikingJelly mode's mean is above ours."""
    rows = []
    env = record.get("environment", {})
    for arch, methods in record["stats"].items():
        n = record["ann"][arch]["accuracy"]["n"]
        t8 = {k: v[str(8)] if str(8) in v else v[8] for k, v in methods.items()}
        ours = ", ".join(f"{k.split(': ', 1)[1]} {_mean_sd(v)}" for k, v in t8.items()
                         if k.startswith("ours"))
        peers = ", ".join(f"`{k.split(': ', 1)[1]}` {_mean_sd(v)}" for k, v in t8.items()
                          if k.startswith("spikingjelly"))
        wins = [w for w in record["peer_wins"] if w["architecture"] == arch]
        by_pair: dict[tuple[str, str], list[int]] = {}
        for w in wins:
            by_pair.setdefault((w["peer"], w["ours"]), []).append(w["T"])
        ahead = "; ".join(
            f"`{p.split(': ', 1)[1]}` above our {o.split(': ', 1)[1]} at T = "
            + ", ".join(str(t) for t in ts) for (p, o), ts in by_pair.items()
        )
        ann = record["ann"][arch]["accuracy"]
        what = (f"ANN-to-SNN conversion, digits {arch.replace('_', ' ')}, accuracy at T=8, "
                f"mean ± sd over n={n} seeds (ANN {_mean_sd(ann)}; {env.get('epochs', '?')} "
                "epochs)")
        peer_text = f"SpikingJelly {peers}" + (f"; ahead: {ahead}" if ahead else
                                              "; never ahead of ours")
        rows.append((what, ours, peer_text, f"`{name}`"))
    return rows


def converter_seeds_table(record: dict, name: str) -> list[str]:
    """The accuracy of every method at every T for ``bench_converter_seeds.py`` records."""
    ts = record["timesteps"]
    lines = [
        "",
        f"Conversion accuracy (%) by time steps T, mean ± sd over the seeds {record['seeds']} "
        f"(n per network: " + ", ".join(f"{a} {v['accuracy']['n']}" for a, v in
                                        record["ann"].items()) + f"; `{name}`):",
        "",
        "| network | method | " + " | ".join(f"T={t}" for t in ts) + " |",
        "|---|---|" + "---|" * len(ts),
    ]
    for arch, methods in record["stats"].items():
        for method, per_t in methods.items():
            cells = []
            for t in ts:
                s = per_t[str(t)] if str(t) in per_t else per_t[t]
                cells.append(_mean_sd(s))
            lines.append(f"| {arch} | {method} | " + " | ".join(cells) + " |")
    missing = {a: v for a, v in record.get("incomplete", {}).items()}
    if missing:
        lines += ["", "Not in this record (fewer than two seeds finished): " + ", ".join(
            f"{a} (seeds finished: {v or 'none'})" for a, v in missing.items()) + "."]
    return lines


def datasets_rows(record: dict, name: str) -> list[Row]:
    """``bench_datasets.py``: decoding speed per format and event-to-frame speed."""
    readers = record["readers"]
    ours = ", ".join(f"{r['format'].upper()}: {r['ours_Mev_per_s']:.0f}" for r in readers)
    peers = " / ".join(f"{r['expelliarmus_Mev_per_s']:.0f}" for r in readers)
    ratios = " / ".join(_ratio(r["speedup"]) for r in readers)
    rows = [(f"event-file decoding (M events/s; best of {record['info']['repeat']})", ours,
             f"expelliarmus {peers} (ours {ratios} faster)", f"`{name}`")]
    frames = record["frames"]
    lo = min(f["ours_Mev_per_s"] for f in frames)
    hi = max(f["ours_Mev_per_s"] for f in frames)
    slo = min(f["speedup"] for f in frames)
    shi = max(f["speedup"] for f in frames)
    rows.append((f"events to frames ({len(frames)} settings)", f"{lo:.0f}-{hi:.0f} M events/s",
                 f"tonic `ToFrame` {slo:.1f}x-{shi:.1f}x slower", f"`{name}`"))
    return rows


def energy_rows(record: dict, name: str) -> list[Row]:
    """``bench_energy.py``: agreement of the counts and time over the peers."""
    rows = record["rows"]
    agree = all(r.get("neurobench_agrees") for r in rows)
    ours = ("counts equal to NeuroBench's (effective ACs/MACs)" if agree
            else "counts DIFFER from NeuroBench's")
    peers = "; ".join(
        f"{r['network']}: NeuroBench {_ratio(1 / r['ours_over_neurobench'])}, sinabs "
        f"{_ratio(1 / r['ours_over_sinabs'])}" for r in rows
    ) + " (each peer's time over ours)"
    return [("energy counting (time of the counter)", ours, peers,
             f"`{name}`, `tests/energy/test_crosscheck.py`")]


def recipe_rows(record: dict, name: str) -> list[Row]:
    """``recipe_digits_events.py``, ``recipe_transformer_digits_events.py``: a training recipe's
    test accuracy against its target (every seed's, when the record has several)."""
    accs = record.get("test_accuracy_per_seed") or [record["test_accuracy"]]
    seeds = [r["seed"] for r in record.get("seeds", [])]
    what = (f"recipe `{record['recipe']}` ({record['model']}, {record['parameters']:,} "
            f"parameters, {record['steps']} steps, {record['config']['epochs']} epochs, "
            f"{record['test_samples']} test samples)")
    if len(accs) > 1:
        ours = ("seeds " + ", ".join(str(s) for s in seeds) + ": "
                + ", ".join(_pct(a) for a in accs))
    else:
        ours = _pct(accs[0])
    return [(what, f"{ours} (target {_pct(record['target_accuracy'])})", "", f"`{name}`")]


def spikegpt_chars_rows(record: dict, name: str) -> list[Row]:
    """``recipe_spikegpt_chars.py``: held-out bits per character of the spiking RWKV model
    against the same-size plain RWKV, a GRU and the unigram entropy, trained in the same run."""
    models = record["models"]
    ours = models["spiking_rwkv"]
    s = record["settings"]
    cond = _conditions(record.get("torch_threads"), record.get("load_average_at_start"))
    what = (f"character LM on Python's standard library (SpikeGPT-style, "
            f"{ours['parameters'] / 1e3:.0f} k parameters, {s['steps']} steps of "
            f"{s['batch']}x{s['ctx']} characters, CPU, {cond}): test bits/char")
    names = {"rwkv": "plain RWKV", "gru": "GRU"}
    peers = [f"{names[k]} {v['test_bpc']:.2f}" for k, v in models.items() if k in names]
    peers.append(f"unigram {record['unigram_test_bpc']:.2f}")
    return [(what, f"{ours['test_bpc']:.2f} (spike rate {_pct(ours.get('spike_rate', 0))})",
             ", ".join(peers), f"`{name}`")]


def memory_rows(record: dict, name: str) -> list[Row]:
    """``bench_memory.py``: peak memory of one training step against the plain path and the
    peer's memory optimisation, with the step time (median and range)."""
    res = record["results"]
    ours = res["snn_memory_efficient"]
    loads = record.get("load_average") or []
    highest = max((x[0] if isinstance(x, (list, tuple)) else x) for x in loads) if loads else None
    cond = _conditions(record.get("threads"), [highest] if highest is not None else None)

    def fmt(r: dict) -> str:
        t = r["step_seconds"]
        return (f"{r['peak_step_mib']['median']:.0f} MiB ({r['memory_vs_plain']:.2f}x plain), "
                f"step {_s(t['median'])} ({_s(t['min'])}-{_s(t['max'])})")

    peer = res.get("spikingjelly_memopt")
    peers = (f"SpikingJelly memopt {fmt(peer)}; plain {fmt(res['plain'])}" if peer
             else f"plain {fmt(res['plain'])}")
    same = all(r.get("gradients_equal_plain") for r in res.values())
    kwargs = record.get("model_kwargs") or {}
    shown = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k not in ("in_channels",))
    what = (f"peak training memory of one step, {record['model']}"
            f"{f' ({shown})' if shown else ''} input "
            f"{'x'.join(str(d) for d in record['input'])} (CPU, {cond}; median of "
            f"{record['repeats']} processes; gradients "
            f"{'bit-identical' if same else 'DIFFER'})")
    return [(what, fmt(ours), peers, f"`{name}`")]


def spikformer_rows(record: dict, name: str) -> list[Row]:
    """``bench_spikformer.py``: one training step of our Spikformer against SpikingJelly's."""
    s = record["summary"]
    ours, peer = s["snn"], s["spikingjelly"]
    load = record.get("load_average_1min_at_each_start")
    cond = _conditions(record.get("torch_threads"), [max(load)] if load else None)
    what = (f"{record['benchmark']}, batch {record['batch']}, T={record['steps']} (CPU, {cond}, "
            f"highest load at a start; median of {ours['step_s']['n']} runs)")
    r = record["ratios"]
    mem_ours = ours["step_peak_increase_mb"]["median"]
    mem_peer = peer["step_peak_increase_mb"]["median"]
    ours_text = f"{_s(ours['step_s']['median'])}, peak +{mem_ours:.0f} MB"
    peer_text = (f"SpikingJelly `spikformer` {_s(peer['step_s']['median'])}, peak "
                 f"+{mem_peer:.0f} MB (ours {r['time_ours_over_spikingjelly']:.2f}x its time, "
                 f"{r['memory_ours_over_spikingjelly']:.2f}x its memory)")
    back = record.get("returning_allocator")
    if back:  # the same steps with freed memory returned to the system (live tensors)
        m = back["step_peak_increase_mb"]
        ours_text += f"; +{m['snn']['median']:.0f} MB with freed memory returned"
        peer_text += (f"; +{m['spikingjelly']['median']:.0f} MB with freed memory returned "
                      f"(ours {r['memory_ours_over_spikingjelly_returning_allocator']:.2f}x)")
    return [(what, ours_text, peer_text, f"`{name}`")]


def compile_rows(record: dict, name: str) -> list[Row]:
    """``bench_compile.py``: torch.compile of the fused path against eager."""
    cond = _conditions(record.get("threads"), record.get("load_average"))
    e, c = record["eager"], record["compiled"]
    what = (f"{record['benchmark']}, size {'x'.join(str(d) for d in record['size'])} "
            f"(CPU, {cond}; median of {len(record['times']['compiled'])}, quartiles)")
    return [(what, f"compiled {_s(c['median'])} ({_s(c['q1'])}-{_s(c['q3'])}), "
                   f"{record['graph_breaks']} graph breaks",
             f"eager {_s(e['median'])} ({_s(e['q1'])}-{_s(e['q3'])}); compiled/eager "
             f"{record['compiled_over_eager']:.2f}", f"`{name}`")]


def _spread(sc: dict, proc: str, key: str) -> str:
    """`` [min-max]`` of a time over a scenario's repeats, when there were several."""
    s = sc.get("summary", {}).get(proc, {}).get(key)
    return f" [{_s(s['min'])}-{_s(s['max'])}]" if s and s["n"] > 1 else ""


def cold_start_rows(record: dict, name: str) -> list[Row]:
    """``cold_start.py``: first call in a fresh process, cold and warm kernel cache (medians
    and ranges over the repeats, when repeated)."""
    rows = []
    load = record.get("load_average_before")
    for sc in record["scenarios"]:
        cold, warm = sc["cold"], sc.get("warm")
        where = "read-only install" if sc.get("read_only_install") else "writable install"
        if sc.get("repeats", 1) > 1:
            where += f"; median of {sc['repeats']} fresh copies [min-max]"
        ours = (f"cold cache {_s(cold['first_call_s'])}{_spread(sc, 'cold', 'first_call_s')} "
                f"(ran on {cold['first_call_ran_on']})")
        if cold.get("numba_from_s_after_import") is not None:
            ours += f", kernels from {_s(cold['numba_from_s_after_import'])}"
        if cold.get("compiled_elsewhere_after_s") is not None:
            ours += (f", compiled elsewhere after {_s(cold['compiled_elsewhere_after_s'])}"
                     f"{_spread(sc, 'cold', 'compiled_elsewhere_after_s')}, "
                     f"then still on {cold['runs_on_after_compilation']}")
        if warm:
            ours += f"; warm cache {_s(warm['first_call_s'])}{_spread(sc, 'warm', 'first_call_s')}"
            if "first_call_ran_on" in warm:
                ours += f" (ran on {warm['first_call_ran_on']})"
            if (warm.get("numba_from_s_after_import") is not None
                    and warm.get("first_call_ran_on") != "numba"):
                ours += f", kernels from {_s(warm['numba_from_s_after_import'])}"
            if "import_s" in warm:
                ours += f"; import {_s(warm['import_s'])}{_spread(sc, 'warm', 'import_s')}"
        if "warm_process_compiled_nothing" in sc:
            ours += ("; second process compiled nothing" if sc["warm_process_compiled_nothing"]
                     else "; SECOND PROCESS RECOMPILED")
        rows.append((f"first LIF forward + backward in a fresh process ({where}; CPU, "
                     f"{_conditions(None, load)})", ours, "", f"`{name}`"))
    return rows


def _acc_at(acc: dict, t: int) -> float:
    return acc[str(t)] if str(t) in acc else acc[t]


def converter_vit_rows(record: dict, name: str) -> list[Row]:
    """``bench_converter_vit.py``: a small ViT converted, accuracy at T = 1, 4, 8, 32 and the
    first T within 1 point of the ANN; SpikingJelly's transformer recipe in the same run."""
    ts = (1, 4, 8, 32)
    ours = []
    for label, r in record["ours"].items():
        acc = ", ".join(f"T={t} {_pct(_acc_at(r['accuracy'], t))}" for t in ts)
        ee = r["early_exit"]
        ours.append(f"{label}: {acc}; within 1 point from T={r['first_T_within_1_point']}; "
                    f"early exit {_pct(ee['accuracy'])} at {ee['mean_steps']:.1f} mean steps")
    sj = record.get("spikingjelly_sta", {})
    peer = ("SpikingJelly transformer recipe: " + ", ".join(
        f"T={t} {_pct(_acc_at(sj['accuracy'], t))}" for t in ts) if sj.get("runs")
        else "SpikingJelly transformer recipe did not run")
    env = record.get("environment", {})
    what = (f"ANN-to-SNN conversion of a small ViT ({record['parameters']} parameters) on the "
            f"digits, ANN {_pct(record['ann_accuracy'])} ({env.get('threads', '?')} thread)")
    return [(what, "; ".join(ours), peer, f"`{name}`")]


def converter_t1_rows(record: dict, name: str) -> list[Row]:
    """``bench_converter_t1.py``: conversion then fine-tuning down to one time step (mean and
    standard deviation over the seeds)."""
    stages = " -> ".join(f"T={t}" for t in record["finetune"]["schedule"])
    n = len(record["seeds"])

    def pm(mean: float, sd: float) -> str:
        return f"{100 * mean:.1f} ± {100 * sd:.1f}%" if n > 1 else _pct(mean)

    conv = _acc_at(record["converted_accuracy"], 1)
    return [(f"digits CNN converted, then fine-tuned {stages} (ANN "
             f"{pm(record['ann_accuracy'], record['ann_accuracy_sd'])}, {n} seed"
             f"{'s' if n > 1 else ''})",
             f"T=1: {pm(record['t1_accuracy'], record['t1_accuracy_sd'])} (converted only: "
             f"{pm(conv['mean'], conv['sd'])})", "", f"`{name}`")]


def record_kind(record: Any) -> str | None:
    """The kind of a record (a key of :data:`ROWS`), or ``None`` when unknown."""
    if not isinstance(record, dict):
        return None
    bench = str(record.get("benchmark", ""))
    if bench.startswith("neuron-only"):
        return "neurons"
    if bench.startswith("Open Neuromorphic"):
        return "open_neuromorphic"
    if bench.startswith("ANN-to-SNN conversion, digits, several seeds"):
        return "converter_seeds"
    if bench.startswith("energy counting"):
        return "energy"
    if "models" in record and "timesteps" in record and "checks" in record:
        return "converter_single"
    if "readers" in record and "frames" in record:
        return "datasets"
    if bench == "recipe_spikegpt_chars":
        return "spikegpt_chars"
    if "recipe" in record and "test_accuracy" in record:
        return "recipe"
    if bench.startswith("peak memory and time of one training step"):
        return "memory"
    if bench.startswith("spikformer"):
        return "spikformer"
    if bench.startswith("torch.compile"):
        return "compile"
    if bench == "cold_start":
        return "cold_start"
    if "spikingjelly_sta" in record and "ours" in record:
        return "converter_vit"
    if "t1_accuracy" in record and "finetune" in record:
        return "converter_t1"
    return None


ROWS: dict[str, Callable[[dict, str], list[Row]]] = {
    "neurons": neurons_rows,
    "open_neuromorphic": open_neuromorphic_rows,
    "converter_single": converter_single_rows,
    "converter_seeds": converter_seeds_rows,
    "datasets": datasets_rows,
    "energy": energy_rows,
    "recipe": recipe_rows,
    "spikegpt_chars": spikegpt_chars_rows,
    "memory": memory_rows,
    "spikformer": spikformer_rows,
    "compile": compile_rows,
    "cold_start": cold_start_rows,
    "converter_vit": converter_vit_rows,
    "converter_t1": converter_t1_rows,
}
"""Record kind -> rows of the main table (the order of this table is the order of the rows)."""

EXTRA: dict[str, Callable[[dict, str], list[str]]] = {
    "converter_seeds": converter_seeds_table,
}
"""Record kind -> further lines after the main table (detailed tables)."""


# -- the block --------------------------------------------------------------------------------
def load_records(results: Path = RESULTS) -> list[tuple[str, dict | None, str | None]]:
    """``(file name, record, kind)`` of every ``*.json`` in ``results``, sorted by name."""
    out = []
    for path in sorted(results.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot read the benchmark record: {err}") from err
        out.append((path.name, record, record_kind(record)))
    return out


def render(results: Path = RESULTS) -> str:
    """The text between the markers (without them), ending in a newline."""
    records = load_records(results)
    rows: list[Row] = []
    extra: list[str] = []
    unknown = []
    for kind, fn in ROWS.items():
        for name, record, k in records:
            if k == kind:
                try:
                    rows.extend(fn(record, name))
                except (KeyError, TypeError, ValueError, IndexError) as err:
                    raise ValueError(f"{name}: record of kind {kind!r} is missing "
                                     f"{err!r}") from err
                if kind in EXTRA:
                    extra.extend(EXTRA[kind](record, name))
    unknown = [name for name, _, k in records if k is None]
    lines = [
        "<!-- generated by benchmarks/readme_table.py from benchmarks/results/*.json; "
        "do not edit by hand -->",
        "",
        "| what | ours | peers (same run) | record |",
        "|---|---|---|---|",
    ]
    lines += [f"| {w} | {o} | {p} | {r} |" for w, o, p, r in rows]
    lines += extra
    if unknown:
        lines += ["", "Records without a table row yet: "
                  + ", ".join(f"`{u}`" for u in unknown) + "."]
    return "\n".join(lines) + "\n"


def replace_block(text: str, block: str) -> str:
    """``text`` with the part between the markers replaced by ``block``.

    Raises:
        ValueError: if the markers are missing, repeated or out of order.
    """
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"README.md must contain exactly one {BEGIN!r} and one {END!r} line")
    head, rest = text.split(BEGIN, 1)
    if END not in rest:
        raise ValueError(f"{END!r} comes before {BEGIN!r} in README.md")
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def _files():
    """``snn._files`` (atomic writes; standard library only) without importing ``snn`` and
    torch."""
    spec = importlib.util.spec_from_file_location("_snn_files", ROOT / "snn" / "_files.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    p.add_argument("--print", action="store_true", help="print the generated block")
    p.add_argument("--readme", type=Path, default=README)
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    block = render(args.results)
    if args.print:
        print(block, end="")
        return 0
    text = args.readme.read_text(encoding="utf-8")
    new = replace_block(text, block)
    if args.check:
        if new != text:
            print(f"{args.readme} is out of date: run python benchmarks/readme_table.py",
                  file=sys.stderr)
            return 1
        return 0
    if new != text:
        _files().atomic_write_text(args.readme, new)
        print(f"rewrote the results block of {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
