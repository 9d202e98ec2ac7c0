"""Disk cache (keys, atomic writes, workers) and the padding collate function."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_datasets import FAKES

from snn.datasets import CachedDataset, PadCollate, get_dataset, pad_sequences, transform_key
from snn.datasets.cache import CacheWarning, atomic_save, read_entry
from snn.datasets.transforms import Compose, Denoise, ToFrame


class CountingFrame:
    """ToFrame that counts its calls in a file (visible across worker processes)."""

    def __init__(self, log):
        self.log = log
        self.inner = ToFrame(sensor_size=(34, 34, 2), n_time_bins=3)

    @property
    def transforms(self):
        return [self.inner]

    def __call__(self, events):
        with open(self.log, "a") as f:
            f.write("x")
        return torch.from_numpy(self.inner(events).astype(np.float32))


def test_transform_key_depends_on_parameters():
    a = transform_key(ToFrame(sensor_size=(34, 34, 2), n_time_bins=3))
    assert a == transform_key(ToFrame(sensor_size=(34, 34, 2), n_time_bins=3))
    assert a != transform_key(ToFrame(sensor_size=(34, 34, 2), n_time_bins=4))
    assert a != transform_key(Compose([ToFrame(sensor_size=(34, 34, 2), n_time_bins=3)]))
    import tonic.transforms as TT

    k1 = transform_key(TT.ToFrame(sensor_size=(34, 34, 2), time_window=1000))
    assert k1 != transform_key(TT.ToFrame(sensor_size=(34, 34, 2), time_window=2000))
    assert transform_key(functools.partial(np.clip, a_min=0)) != transform_key(
        functools.partial(np.clip, a_min=1)
    )
    with pytest.raises(TypeError, match="cache key"):
        transform_key(lambda e: e)
    assert transform_key(Denoise((34, 34, 2), 100)) != transform_key(Denoise((34, 34, 2), 200))


def test_cache_hits_and_values(tmp_path):
    FAKES["nmnist"](tmp_path / "data", "test", archive=False)
    ds = get_dataset("nmnist")(tmp_path / "data", split="test")
    log = tmp_path / "calls.txt"
    cached = CachedDataset(ds, tmp_path / "cache", CountingFrame(log))
    first = [cached[i] for i in range(len(ds))]
    second = [cached[i] for i in range(len(ds))]
    assert log.read_text() == "x" * len(ds)  # computed once per sample
    for (a, ta), (b, tb), i in zip(first, second, range(len(ds))):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b) and ta == tb == ds.targets[i]
        ref = ToFrame(sensor_size=(34, 34, 2), n_time_bins=3)(ds[i][0])
        np.testing.assert_array_equal(b.numpy(), ref)
    other = CachedDataset(ds, tmp_path / "cache", ToFrame(sensor_size=(34, 34, 2), n_time_bins=5))
    assert other.dir != cached.dir and other[0][0].shape[0] == 5
    assert not [p for p in cached.dir.iterdir() if p.name.endswith(".tmp")]


def test_cache_with_dataloader_workers(tmp_path):
    FAKES["nmnist"](tmp_path / "data", "test", archive=False)
    ds = get_dataset("nmnist")(tmp_path / "data", split="test")
    log = tmp_path / "calls.txt"
    cached = CachedDataset(ds, tmp_path / "cache", CountingFrame(log))
    loader = torch.utils.data.DataLoader(cached, batch_size=3, num_workers=2)
    for _ in range(2):
        total = sum(len(t) for _, t in loader)
        assert total == len(ds)
    assert log.read_text() == "x" * len(ds)
    assert len(list(cached.dir.glob("*.npz"))) == len(ds)


def test_atomic_save_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "c" / "0.npz"

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_save(target, data=np.zeros(3))
    assert not target.exists() and os.listdir(tmp_path / "c") == []


ROOT = Path(__file__).resolve().parents[2]

#: A writer that stops inside ``np.savez`` (after some bytes) and waits to be killed.
_STUCK_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from snn.datasets import CachedDataset

    def stuck(f, **arrays):
        f.write(b"PK\\x03\\x04 half an entry")
        f.flush()
        print("writing", flush=True)
        sys.stdin.read()  # until killed

    np.savez = stuck
    CachedDataset([(np.arange(5.0), 3)], sys.argv[1], key="k")[0]
    """
)


def test_temporaries_of_a_killed_writer_are_removed(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen(
        [sys.executable, "-c", _STUCK_WRITER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert writer.stdout.readline() == b"writing\n"
        (tmp,) = (tmp_path / "k").glob(".0.npz.*.tmp")
        # While the writer lives its temporary is left alone.
        live = CachedDataset([(np.arange(5.0), 3)], tmp_path, key="k")
        assert live.removed_temporaries == [] and tmp.exists()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.communicate(timeout=60)
    assert writer.returncode == -signal.SIGKILL
    assert tmp.exists() and not (tmp_path / "k" / "0.npz").exists()
    cached = CachedDataset([(np.arange(5.0), 3)], tmp_path, key="k")
    assert cached.removed_temporaries == [tmp] and not tmp.exists()
    data, target = cached[0]
    np.testing.assert_array_equal(data, np.arange(5.0))
    assert target == 3
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["0.npz"]


class _Counting:
    """``(arange(n) * 2, i)`` for sample ``i``, counting the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i):
        self.calls += 1
        return np.arange(4.0) * 2 + i, i


@pytest.mark.parametrize("damage", ["truncate", "flip", "zeros", "foreign", "missing_array"])
def test_corrupted_entry_is_named_in_a_warning_and_recomputed(tmp_path, damage):
    ds = _Counting()
    cached = CachedDataset(ds, tmp_path, key="k")
    cached[1]
    path = cached.path(1)
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "flip":  # a bit of the data array: caught by the zip CRC
        at = raw.index((np.arange(4.0) * 2 + 1).astype("<f8").tobytes()) + 9
        raw[at] ^= 0x10
    elif damage == "zeros":
        raw = bytearray(len(raw))
    elif damage == "foreign":
        raw = bytearray(b"<html>not found</html>")
    if damage == "missing_array":
        np.savez(path, data=np.zeros(2))
    else:
        path.write_bytes(bytes(raw))
    with pytest.warns(CacheWarning, match=str(path)):
        data, target = cached[1]
    np.testing.assert_array_equal(data, np.arange(4.0) * 2 + 1)
    assert target == 1 and ds.calls == 2
    with np.load(path) as z:  # rewritten whole
        np.testing.assert_array_equal(z["data"], data)
    cached[1]
    assert ds.calls == 2  # and read from the cache again


def test_read_entry_of_a_missing_file_is_none(tmp_path):
    assert read_entry(tmp_path / "none.npz", ("data",)) is None
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.warns(CacheWarning, match="empty.npz"):
        assert read_entry(tmp_path / "empty.npz", ("data",)) is None
    assert not (tmp_path / "empty.npz").exists()


def test_cache_rejects_unsupported_outputs(tmp_path):
    FAKES["nmnist"](tmp_path / "data", "test", archive=False)
    ds = get_dataset("nmnist")(tmp_path / "data", split="test")
    cached = CachedDataset(ds, tmp_path / "cache", functools.partial(len))
    with pytest.raises(TypeError, match="numpy arrays or tensors"):
        cached[0]
    assert not list((tmp_path / "cache").rglob("*.npz"))


def test_pad_sequences_time_first_and_mask():
    a, b = torch.ones(3, 2), 2 * torch.ones(5, 2)
    padded, mask = pad_sequences([a, b])
    assert padded.shape == (5, 2, 2) and mask.shape == (5, 2)
    assert mask[:, 0].tolist() == [True, True, True, False, False]
    assert mask[:, 1].all()
    assert padded[:3, 0].eq(1).all() and padded[3:, 0].eq(0).all() and padded[:, 1].eq(2).all()
    bf, mb = pad_sequences([a, b], pad_value=-1, time_first=False)
    assert bf.shape == (2, 5, 2) and bf[0, 4, 0] == -1 and mb[0].sum() == 3
    with pytest.raises(ValueError, match="trailing shape"):
        pad_sequences([torch.ones(2, 3), torch.ones(2, 4)])


def test_pad_collate_events():
    from snn.datasets.io import make_events

    e1 = make_events([1, 2], [3, 4], [5, 6], [1, 0])
    e2 = make_events([7], [8], [9], [1])
    padded, mask, targets = PadCollate()([(e1, 0), (e2, 3)])
    assert padded.shape == (2, 2, 4) and targets.tolist() == [0, 3]
    assert padded[:, 0].tolist() == [[1, 3, 5, 1], [2, 4, 6, 0]]
    assert padded[0, 1].tolist() == [7, 8, 9, 1] and not mask[1, 1]
