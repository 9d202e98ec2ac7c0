"""Every registered dataset on a tiny copy of its official layout (folder and archive)."""

from __future__ import annotations

import dataclasses
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from fake_datasets import FAKES

from snn.datasets import DATASETS, get_dataset
from snn.datasets.archive import ChecksumError, UnsafeArchiveError, md5sum, safe_extract
from snn.datasets.base import DatasetNotFoundError

NAMES = sorted(DATASETS)


def test_every_dataset_has_a_fake_layout():
    assert sorted(FAKES) == NAMES


def _splits(name):
    return get_dataset(name).splits


CASES = [(n, s) for n in NAMES for s in _splits(n)]


def _check(ds, targets, counts):
    assert len(ds) == len(targets)
    assert ds.targets.tolist() == targets
    for i in range(len(ds)):
        events, target = ds[i]
        assert target == targets[i]
        assert events.size == counts[i], (i, events.size, counts[i])
        assert set("xtp") <= set(events.dtype.names)
        if ds.sensor_size is not None:
            assert events["x"].max() < ds.sensor_size[0]
    assert all(isinstance(c, str) for c in ds.classes)
    assert max(targets) < len(ds.classes)


@pytest.mark.parametrize(("name", "split"), CASES)
def test_extracted_layout(tmp_path, name, split):
    targets, counts = FAKES[name](tmp_path, split, archive=False)
    ds = get_dataset(name)(tmp_path, split=split)
    _check(ds, targets, counts)
    assert repr(ds).startswith(f"{type(ds).__name__}(") and f"samples={len(targets)}" in repr(ds)


def _trust_local_archives(monkeypatch, cls, root):
    """Replace published MD5s by the fake archives' own (the fakes cannot match them)."""
    original = cls.resources

    def resources(self):
        out = []
        for r in original(self):
            path = root / r.filename
            out.append(dataclasses.replace(r, md5=md5sum(path)) if path.is_file() and r.md5 else r)
        return out

    monkeypatch.setattr(cls, "resources", resources)


@pytest.mark.parametrize(("name", "split"), CASES)
def test_archive_is_verified_and_extracted(tmp_path, monkeypatch, name, split):
    targets, counts = FAKES[name](tmp_path, split, archive=True)
    cls = get_dataset(name)
    _trust_local_archives(monkeypatch, cls, tmp_path)
    with pytest.warns(UserWarning, match="no MD5") if name in ("asl_dvs", "ncars") else _null():
        ds = cls(tmp_path, split=split)
    _check(ds, targets, counts)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".extract-")]
    _check(cls(tmp_path, split=split), targets, counts)  # second time: already extracted


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("asl_dvs", "ncars")])
def test_wrong_checksum_extracts_nothing(tmp_path, name):
    split = _splits(name)[0]
    FAKES[name](tmp_path, split, archive=True)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ChecksumError, match="MD5 is"):
        get_dataset(name)(tmp_path, split=split)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("name", NAMES)
def test_missing_files_message(tmp_path, name):
    cls = get_dataset(name)
    with pytest.raises(DatasetNotFoundError) as info:
        cls(tmp_path / "nowhere")
    msg = str(info.value)
    assert "nowhere" in msg and "http" in msg and "place them" in msg
    for res in cls.resources(_stub(cls)):
        assert res.filename in msg


def _stub(cls):
    obj = cls.__new__(cls)
    obj.split = cls.splits[0]
    return obj


def test_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        get_dataset("nmnist")(tmp_path, split="validation")


def test_dvs_gesture_segments_and_classes(tmp_path):
    FAKES["dvs_gesture"](tmp_path, "train", archive=False)
    ds = get_dataset("dvs_gesture")(tmp_path, split="train")
    events, target = ds[1]
    assert target == 10 and ds.classes[target] == "other_gestures"
    assert events["t"].min() == 3000 and events["t"].max() == 9000


def test_heidelberg_class_names_from_file(tmp_path):
    FAKES["ssc"](tmp_path, "valid", archive=False)
    ds = get_dataset("ssc")(tmp_path, split="valid")
    assert ds.classes[:2] == ("w0", "w1") and len(ds.classes) == 35
    ev, _ = ds[0]
    assert ev.dtype.names == ("t", "x", "p")


def test_dataloader_workers(tmp_path):
    FAKES["nmnist"](tmp_path, "test", archive=False)
    ds = get_dataset("nmnist")(tmp_path, split="test")
    from snn.datasets import pad_collate

    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, collate_fn=pad_collate)
    n = 0
    for padded, mask, targets in loader:
        assert padded.shape[:2] == mask.shape and padded.shape[2] == 4
        n += targets.numel()
    assert n == len(ds)


def test_safe_extract_rejects_traversal_and_links(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("ok/file.txt", "x")
        zf.writestr("../evil.txt", "x")
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="evil"):
        safe_extract(bad, dest)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()
    tar = tmp_path / "bad.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        info = tarfile.TarInfo("link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="link"):
        safe_extract(tar, dest)
    assert list(dest.iterdir()) == []
    absolute = tmp_path / "abs.tar"
    with tarfile.open(absolute, "w") as tf:
        data = b"x"
        info = tarfile.TarInfo("/tmp/abs.txt")
        info.size = 1
        import io

        tf.addfile(info, io.BytesIO(data))
    with pytest.raises(UnsafeArchiveError):
        safe_extract(absolute, dest)
    assert list(dest.iterdir()) == []


def test_truncated_archive_leaves_nothing(tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "a.bin").write_bytes(np.arange(20_000, dtype=np.int64).tobytes())
    tar = tmp_path / "a.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        tf.add(src / "d", arcname="d")
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])
    dest = tmp_path / "out"
    with pytest.raises((EOFError, tarfile.TarError, OSError)):
        safe_extract(tar, dest)
    assert list(dest.iterdir()) == []


def test_tonic_transform_passed_unchanged(tmp_path):
    import tonic.transforms as TT

    FAKES["nmnist"](tmp_path, "test", archive=False)
    cls = get_dataset("nmnist")
    plain = cls(tmp_path, split="test")
    ds = cls(tmp_path, split="test", transform=TT.ToFrame(sensor_size=(34, 34, 2), n_time_bins=2))
    frames, target = ds[3]
    assert frames.shape == (2, 2, 34, 34) and target == plain.targets[3]
    assert frames.sum() == plain[3][0].size - 1  # tonic's time bins leave out the last event
