"""Hardware target profiles: published figures, sources, registry and user files."""

from __future__ import annotations

import json

import pytest

from snn.energy import (
    CATEGORIES,
    FIGURE_NAMES,
    HOROWITZ_2014,
    KINDS,
    TARGETS,
    Figure,
    HardwareTarget,
    get_target,
    load_target,
)

PJ = 1e-12


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_figure_has_a_source_and_kind(name):
    target = TARGETS[name]
    assert target.name == name and target.description
    assert target.figures(), "a target without any figure prices nothing"
    for op, fig in target.figures().items():
        assert op in FIGURE_NAMES
        assert fig.kind in KINDS and fig.source.strip()
        assert fig.joules > 0
        if fig.kind == "derived":
            assert fig.note, f"{name}.{op}: a derived figure must say how it was derived"
    assert set(target.included) <= set(CATEGORIES)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_json_and_toml_round_trip(name, tmp_path):
    target = TARGETS[name]
    data = target.to_dict()
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    loaded = load_target(path)
    assert loaded.figures().keys() == target.figures().keys()
    for op, fig in target.figures().items():
        got = loaded.figures()[op]
        assert got.joules == pytest.approx(fig.joules, rel=1e-12)
        assert (got.source, got.kind, got.note) == (fig.source, fig.kind, fig.note)
    assert loaded.included == target.included


def test_published_horowitz_figures():
    # Horowitz, ISSCC 2014, 45 nm, 0.9 V
    h = HOROWITZ_2014
    assert h["fp32_mult"].picojoules == pytest.approx(3.7)
    assert h["fp32_add"].picojoules == pytest.approx(0.9)
    assert h["int8_mult"].picojoules == pytest.approx(0.2)
    assert h["int8_add"].picojoules == pytest.approx(0.03)
    assert h["sram_8kb"].picojoules == pytest.approx(10.0)
    fp32, int8 = TARGETS["cmos45_fp32"], TARGETS["cmos45_int8"]
    parts = h["fp32_mult"].picojoules + h["fp32_add"].picojoules
    assert fp32.mac.picojoules == pytest.approx(parts)
    assert fp32.mac.picojoules == pytest.approx(4.6)
    assert fp32.ac.picojoules == pytest.approx(0.9)
    assert int8.mac.picojoules == pytest.approx(0.23)
    assert int8.ac.picojoules == pytest.approx(0.03)


def test_published_neuromorphic_figures():
    loihi, tn = TARGETS["loihi"], TARGETS["truenorth"]
    # Davies et al. 2018, Table 2 (pre-silicon)
    assert loihi.ac.picojoules == pytest.approx(23.6) and loihi.ac.kind == "simulated"
    assert loihi.neuron_update.picojoules == pytest.approx(81.0)
    assert loihi.neuron_update_inactive.picojoules == pytest.approx(52.0)
    assert loihi.spike.picojoules == pytest.approx(1.7)
    assert loihi.hop.picojoules == pytest.approx(3.0)
    assert loihi.mac is None  # no published MAC energy: MACs stay unpriced
    # Merolla et al. 2014
    assert tn.ac.picojoules == pytest.approx(26.0) and tn.ac.kind == "measured"
    assert set(tn.included) == {"memory", "neuron", "communication"}


def test_spinnaker2_prices_the_quoted_synaptic_op_only():
    s2 = TARGETS["spinnaker2"]
    # Tang et al. 2023 (PMC10326429), Table 3, quoting Hoeppner et al. 2021: 10 pJ per SOp
    assert s2.ac.picojoules == pytest.approx(10.0) and s2.ac.kind == "quoted"
    assert "2103.08392" in s2.ac.source and "Table 3" in s2.ac.source
    # nothing else could be read from a primary source: left unpriced, not declared included
    assert set(s2.figures()) == {"ac"}
    assert s2.included == {}


def test_omitted_targets_are_explained():
    import snn.energy.targets as targets

    assert "speck" not in " ".join(TARGETS)
    assert "Speck" in targets.__doc__


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_target_is_described_in_the_module_docstring(name):
    import snn.energy.targets as targets

    assert f"``{name}``" in targets.__doc__


def test_unknown_target_lists_names():
    with pytest.raises(ValueError, match=r"cmos45_fp32.*loihi.*truenorth"):
        get_target("loihi3")
    with pytest.raises(TypeError):
        get_target(3)
    assert get_target(TARGETS["loihi"]) is TARGETS["loihi"]


def test_toml_target(tmp_path):
    path = tmp_path / "chip.toml"
    path.write_text(
        'name = "chip"\ndescription = "test chip"\n'
        '[figures.ac]\npj = 1.5\nsource = "lab notebook 12"\nkind = "measured"\n'
        '[included]\nmemory = "inside ac"\n'
    )
    target = load_target(path)
    assert target.ac == Figure(1.5e-12, "lab notebook 12", "measured", "")
    assert target.included == {"memory": "inside ac"} and target.mac is None


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"name": "x", "figures": {"ac": {"pj": 1, "kind": "measured"}}}, "misses.*source"),
        ({"name": "x", "figures": {"ac": {"pj": 1, "source": "s", "kind": "guess"}}}, "kind"),
        ({"name": "x", "figures": {"flop": {"pj": 1, "source": "s", "kind": "derived"}}},
         "unknown operation"),
        ({"name": "x", "figures": {"ac": {"pj": -1, "source": "s", "kind": "derived"}}}, ">= 0"),
        ({"name": "x", "figures": {"ac": {"pj": "1", "source": "s", "kind": "derived"}}},
         "number"),
        ({"name": "x", "figures": {}}, "non-empty"),
        ({"figures": {"ac": {"pj": 1, "source": "s", "kind": "derived"}}}, "missing 'name'"),
        ({"name": "x", "colour": 1, "figures": {}}, "unknown keys"),
        ({"name": "x", "figures": {"ac": {"pj": 1, "source": "s", "kind": "derived"}},
          "included": {"power": "?"}}, "unknown categories"),
    ],
)
def test_bad_target_files(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=match) as info:
        load_target(path)
    assert "bad.json" in str(info.value)


def test_bad_target_file_formats(tmp_path):
    (tmp_path / "t.yaml").write_text("name: x")
    with pytest.raises(ValueError, match=r"\.json or \.toml"):
        load_target(tmp_path / "t.yaml")
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot parse"):
        load_target(tmp_path / "t.json")
    (tmp_path / "t.toml").write_text("name = ")
    with pytest.raises(ValueError, match="cannot parse"):
        load_target(tmp_path / "t.toml")
    with pytest.raises(ValueError, match="cannot read"):
        load_target(tmp_path / "missing.json")


def test_figure_and_target_validation():
    with pytest.raises(ValueError):
        Figure(float("nan"), "s", "measured")
    with pytest.raises(ValueError):
        Figure(1e-12, "", "measured")
    with pytest.raises(TypeError):
        HardwareTarget(name="x", description="", ac=1e-12)
    with pytest.raises(ValueError):
        HardwareTarget(name="", description="")


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_target_is_on_the_energy_docs_page(name):
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "energy.md"
    rows = [line for line in page.read_text(encoding="utf-8").splitlines()
            if line.startswith(f"| `{name}` |")]
    assert len(rows) == 1, f"docs/energy.md needs one table row for target {name!r}"
    ac = TARGETS[name].ac
    assert f"ac {ac.picojoules:g}" in rows[0]
    assert all(f.kind in rows[0] for f in TARGETS[name].figures().values())
