"""Tiny copies of each dataset's official layout, as extracted folders or as archives.

``FAKES[name](root, split, archive)`` writes the files one split needs and returns the
expected ``(targets, events per sample)`` in dataset order.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import scipy.io
from event_writers import (
    aedat3_packet,
    atis_record,
    davis_address,
    polarity_events,
    write_aedat2,
    write_aedat3,
    write_dat,
    write_shd,
)


def _pack(root: Path, folders: list[str], archive_name: str, archive: bool) -> None:
    """Move the written folders into ``archive_name`` when an archive is wanted."""
    if not archive:
        return
    path = root / archive_name
    if archive_name.endswith(".tar.gz"):
        with tarfile.open(path, "w:gz") as tf:
            for d in folders:
                tf.add(root / d, arcname=d)
    else:
        with zipfile.ZipFile(path, "w") as zf:
            for d in folders:
                p = root / d
                files = sorted(p.rglob("*")) if p.is_dir() else [p]
                for f in files:
                    zf.write(f, f.relative_to(root).as_posix())
    for d in folders:
        p = root / d
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def _atis(path: Path, n: int, size: int = 34) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"".join(atis_record(i % size, (2 * i) % size, 10 * i, i % 2) for i in range(n))
    )


def fake_dvs_gesture(root: Path, split: str, archive: bool):
    base = root / "DvsGesture"
    base.mkdir(parents=True, exist_ok=True)
    trials = {"train": ["user01_lab.aedat", "user02_led.aedat"], "test": ["user24_natural.aedat"]}
    for s, names in trials.items():
        (base / f"trials_to_{s}.txt").write_text("\n".join(names) + "\n\n")
    targets, counts = [], []
    for k, name in enumerate(trials["train"] + trials["test"]):
        t = np.arange(0, 10_000, 100)  # 100 events at 0, 100, ..., 9900 us, two packets
        first = polarity_events(np.arange(50), np.arange(50), t[:50], np.ones(50, int))
        second = polarity_events(np.arange(50), np.arange(50), t[50:], np.zeros(50, int))
        write_aedat3(base / name, [aedat3_packet(1, 1, first, 8), aedat3_packet(1, 1, second, 8)])
        rows = [(k % 11 + 1, 1000, 3000), (11, 2950, 9001)]
        (base / name.replace(".aedat", "_labels.csv")).write_text(
            "class,startTime_usec,endTime_usec\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)
        )
        if name in trials[split]:
            targets += [k % 11, 10]
            counts += [20, 61]  # [1000, 3000) -> 20 events; [2950, 9001) -> 3000..9000 = 61
    _pack(root, ["DvsGesture"], "DvsGesture.tar.gz", archive)
    return targets, counts


def fake_nmnist(root: Path, split: str, archive: bool):
    folder = split.capitalize()
    targets, counts = [], []
    for digit in range(10):
        for j in range(2 if digit % 3 == 0 else 1):
            n = 5 + digit + j
            _atis(root / folder / str(digit) / f"{digit * 100 + j:05d}.bin", n)
            targets.append(digit)
            counts.append(n)
    _pack(root, [folder], f"{folder}.zip", archive)
    return targets, counts


def fake_ncaltech101(root: Path, split: str, archive: bool):
    classes = ["BACKGROUND_Google", "Faces_easy", "accordion"]  # sorted order
    targets, counts = [], []
    for i, c in enumerate(classes):
        for j in (1, 2, 10):  # natural order: image_0002 before image_0010
            n = 3 + i + j
            _atis(root / "Caltech101" / c / f"image_{j:04d}.bin", n, size=200)
            targets.append(i)
            counts.append(n)
    _pack(root, ["Caltech101"], "Caltech101.zip", archive)
    return targets, counts


CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def fake_cifar10_dvs(root: Path, split: str, archive: bool):
    targets, counts = [], []
    for i, c in enumerate(CIFAR):
        (root / c).mkdir(parents=True, exist_ok=True)
        for j in (0, 2, 11):
            n = 4 + i
            addr = [davis_address(k % 128, (5 * k) % 128, k % 2) for k in range(n)]
            write_aedat2(root / c / f"cifar10_{c}_{j}.aedat", addr, np.arange(n) * 7, "DVS128")
            targets.append(i)
            counts.append(n)
        _pack(root, [c], f"{c}.zip", archive)
    return targets, counts


ASL = "abcdefghiklmnopqrstuvwxy"


def fake_asl_dvs(root: Path, split: str, archive: bool):
    targets, counts = [], []
    inner = []
    for i, letter in enumerate(ASL):
        d = root / letter
        d.mkdir(parents=True, exist_ok=True)
        n = 2 + i % 4
        scipy.io.savemat(
            d / f"{letter}_0001.mat",
            {
                "x": np.arange(n)[:, None],
                "y": np.arange(n)[:, None] + 1,
                "ts": np.arange(n)[:, None] * 10,
                "pol": (np.arange(n) % 2)[:, None],
            },
        )
        targets.append(i)
        counts.append(n)
        inner.append(letter)
    if archive:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as outer:
            for letter in inner:
                z = io.BytesIO()
                with zipfile.ZipFile(z, "w") as zf:
                    for f in sorted((root / letter).iterdir()):
                        zf.write(f, f"{letter}/{f.name}")
                outer.writestr(f"ICCV2019_DVS_dataset/Yin_{letter}.zip", z.getvalue())
                shutil.rmtree(root / letter)
        (root / "ICCV2019_DVS_dataset.zip").write_bytes(buf.getvalue())
    return targets, counts


def fake_ncars(root: Path, split: str, archive: bool):
    folder = f"n-cars_{split}"
    targets, counts = [], []
    for i, c in enumerate(["background", "cars"]):
        (root / folder / c).mkdir(parents=True, exist_ok=True)
        for j in range(3):
            n = 2 + j + 3 * i
            write_dat(
                root / folder / c / f"obj_{j:06d}_td.dat",
                np.arange(n),
                np.arange(n),
                np.arange(n) * 5,
                np.arange(n) % 2,
                header="% Version 2\n",
            )
            targets.append(i)
            counts.append(n)
    _pack(root, [folder], f"{folder}.zip", archive)
    return targets, counts


def _heidelberg(prefix: str, n_classes: int, root: Path, split: str, archive: bool):
    labels = [i % n_classes for i in range(0, 3 * n_classes, 4)]
    times = [np.linspace(0, 0.5, 3 + k % 5) for k in range(len(labels))]
    units = [np.arange(len(t)) * 7 % 700 for t in times]
    name = f"{prefix}_{split}.h5"
    write_shd(root / name, times, units, labels)
    import h5py

    with h5py.File(root / name, "a") as f:
        f.create_dataset("extra/keys", data=np.array([f"w{i}".encode() for i in range(n_classes)]))
    _pack(root, [name], f"{name}.zip", archive)
    return labels, [len(t) for t in times]


def fake_shd(root: Path, split: str, archive: bool):
    return _heidelberg("shd", 20, root, split, archive)


def fake_ssc(root: Path, split: str, archive: bool):
    return _heidelberg("ssc", 35, root, split, archive)


FAKES = {
    "dvs_gesture": fake_dvs_gesture,
    "nmnist": fake_nmnist,
    "ncaltech101": fake_ncaltech101,
    "cifar10_dvs": fake_cifar10_dvs,
    "asl_dvs": fake_asl_dvs,
    "ncars": fake_ncars,
    "shd": fake_shd,
    "ssc": fake_ssc,
}


LIP_DTYPE = np.dtype([("t", "<i4"), ("x", "i1"), ("y", "i1"), ("p", "i1")])


def fake_dvs_lip(root: Path, split: str, archive: bool):
    targets, counts = [], []
    for other in ("train", "test"):
        for i, word in enumerate(["accused", "action", "allow"]):
            d = root / "DVS-Lip" / other / word
            d.mkdir(parents=True, exist_ok=True)
            for j in range(2):
                n = 3 + i + j
                ev = np.zeros(n, LIP_DTYPE)
                ev["t"] = np.arange(n) * 1000
                ev["x"] = np.arange(n) * 9 % 128
                ev["y"] = 127 - np.arange(n)
                ev["p"] = np.arange(n) % 2
                np.save(d / f"{j}.npy", ev)
                if other == split:
                    targets.append(i)
                    counts.append(n)
    _pack(root, ["DVS-Lip"], "DVS-Lip.zip", archive)
    return targets, counts


FAKES["dvs_lip"] = fake_dvs_lip
