"""Deterministic benchmark data: the same bytes on every machine and every run.

    python benchmarks/gen_data.py                 # ct, big and tiny under benchmarks/data/
    python benchmarks/gen_data.py tiny --scale 0.1

Sets (issue 4): `ct`, 500 CT images of 512x512 16-bit (~0.5 MB each) in 2 studies; `big`, 8
multi-frame instances of ~64 MB (128 frames of 512x512 16-bit); `tiny`, 2000 instances of ~2 KB.
`--scale` shrinks the counts (and the frames of `big`). UIDs are derived from the set, scale and
index (pydicom's generate_uid with entropy sources is a hash), pixels from a seeded generator;
nothing depends on the clock. A set is written once: `<set>.json` beside its folder records what
was made and is written last, so an interrupted run is redone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import DATA_DIR

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

GENERATOR_VERSION = 1
UID_ROOT = "netdicom-bench"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
# Multi-frame Grayscale Word Secondary Capture (PS3.3 A.8.4): many 16-bit frames, no CT module.
MF_GRAYSCALE_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
FRAME_BYTES = 512 * 512 * 2


@dataclass(frozen=True, slots=True)
class DataSet:
    name: str
    scale: float
    path: Path
    files: tuple[Path, ...]
    bytes: int

    @property
    def megabytes(self) -> float:
        return self.bytes / 1e6


def uid(*parts: object) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[UID_ROOT, *(str(p) for p in parts)]))


def _base_dataset(
    *,
    sop_class: str,
    sop_instance: str,
    patient: int,
    study_uid: str,
    series_uid: str,
    series_number: int,
    instance_number: int,
    modality: str,
    rows: int,
    columns: int,
) -> Dataset:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.AccessionNumber = f"ACC{patient:04d}"
    ds.Modality = modality
    ds.Manufacturer = "netdicom benchmarks"
    ds.PatientName = f"BENCH^PATIENT{patient:04d}"
    ds.PatientID = f"BENCH{patient:04d}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = str(patient)
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    return ds


def write_instance(
    path: Path,
    ds: Dataset,
    pixel_bytes: int,
    chunks: Callable[[], Iterator[bytes]],
    *,
    frames: int = 1,
) -> int:
    """Write `ds` as Part 10 (explicit VR LE), then Pixel Data streamed from `chunks()`.

    Pixel Data (7FE0,0010) is the last element of these data sets, so it is appended after
    pydicom wrote the rest: a 1 GB instance never sits in memory.
    """
    from pydicom.dataset import FileMetaDataset

    if frames > 1:
        ds.NumberOfFrames = frames
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = EXPLICIT_VR_LE
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
    if pixel_bytes % 2 or pixel_bytes >= 0xFFFFFFFF:
        raise ValueError(f"pixel data of {pixel_bytes} bytes cannot be one OW element")
    written = 0
    with path.open("ab") as out:
        # Explicit VR LE, OW: tag, VR, 2 reserved bytes, 32-bit length (PS3.5 7.1.2).
        out.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, pixel_bytes))
        for chunk in chunks():
            out.write(chunk)
            written += len(chunk)
    if written != pixel_bytes:
        raise RuntimeError(f"{path}: wrote {written} pixel bytes, expected {pixel_bytes}")
    return path.stat().st_size


def _noise(seed: int, frames: int, rows: int, columns: int) -> Callable[[], Iterator[bytes]]:
    """12-bit noise, one frame at a time, from a generator seeded with `seed`."""

    def chunks() -> Iterator[bytes]:
        import numpy as np

        rng = np.random.default_rng(seed)
        for _ in range(frames):
            yield rng.integers(0, 4096, size=rows * columns, dtype=np.uint16).tobytes()

    return chunks


def _seed(*parts: object) -> int:
    import hashlib

    digest = hashlib.sha256("/".join(str(p) for p in (UID_ROOT, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _count(n: int, scale: float) -> int:
    return max(1, round(n * scale))


def _gen_ct(root: Path, scale: float) -> None:
    # 2 studies (2 patients) of 2 series each; 500 images in all at scale 1.
    total = _count(500, scale)
    per_study = (total + 1) // 2
    for i in range(total):
        study, rest = divmod(i, per_study)
        series = rest * 2 // per_study
        ds = _base_dataset(
            sop_class=CT_IMAGE,
            sop_instance=uid("ct", scale, "image", i),
            patient=study + 1,
            study_uid=uid("ct", scale, "study", study),
            series_uid=uid("ct", scale, "series", study, series),
            series_number=series + 1,
            instance_number=i + 1,
            modality="CT",
            rows=512,
            columns=512,
        )
        ds.FrameOfReferenceUID = uid("ct", scale, "frame-of-reference", study)
        ds.SliceThickness = "1.0"
        ds.KVP = "120"
        ds.PixelSpacing = ["0.7", "0.7"]
        ds.ImagePositionPatient = ["-180", "-180", str(i)]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        path = root / f"study{study + 1}" / f"series{series + 1}" / f"CT{i + 1:05d}.dcm"
        write_instance(path, ds, FRAME_BYTES, _noise(_seed("ct", scale, i), 1, 512, 512))


def _gen_big(root: Path, scale: float) -> None:
    count = _count(8, scale)
    frames = max(2, round(128 * scale))
    for i in range(count):
        path = root / f"MF{i + 1:03d}.dcm"
        write_multiframe(path, ("big", scale, i), frames)


def write_multiframe(path: Path, key: tuple[object, ...], frames: int) -> int:
    """One Multi-frame Grayscale Word SC instance of `frames` 512x512 16-bit frames."""
    ds = _base_dataset(
        sop_class=MF_GRAYSCALE_WORD_SC,
        sop_instance=uid(*key, "image"),
        patient=9000,
        study_uid=uid(*key, "study"),
        series_uid=uid(*key, "series"),
        series_number=1,
        instance_number=1,
        modality="OT",
        rows=512,
        columns=512,
    )
    ds.ConversionType = "WSD"
    return write_instance(
        path, ds, FRAME_BYTES * frames, _noise(_seed(*key), frames, 512, 512), frames=frames
    )


def _gen_tiny(root: Path, scale: float) -> None:
    # 2000 small CT instances (24x24 pixels: ~1.1 KB of pixels + ~0.9 KB of attributes).
    total = _count(2000, scale)
    for i in range(total):
        series = i // 100
        ds = _base_dataset(
            sop_class=CT_IMAGE,
            sop_instance=uid("tiny", scale, "image", i),
            patient=100,
            study_uid=uid("tiny", scale, "study"),
            series_uid=uid("tiny", scale, "series", series),
            series_number=series + 1,
            instance_number=i + 1,
            modality="CT",
            rows=24,
            columns=24,
        )
        path = root / f"series{series + 1:02d}" / f"TI{i + 1:05d}.dcm"
        write_instance(path, ds, 24 * 24 * 2, _noise(_seed("tiny", scale, i), 1, 24, 24))


GENERATORS: dict[str, Callable[[Path, float], None]] = {
    "ct": _gen_ct,
    "big": _gen_big,
    "tiny": _gen_tiny,
}


def set_dir(name: str, scale: float, root: Path = DATA_DIR) -> Path:
    return root / (name if scale == 1 else f"{name}-s{scale:g}")


def _files(path: Path) -> tuple[Path, ...]:
    return tuple(sorted(p for p in path.rglob("*.dcm") if p.is_file()))


def ensure(name: str, scale: float = 1.0, root: Path = DATA_DIR, *, force: bool = False) -> DataSet:
    """The data set `name` at `scale`, generated unless already there and complete."""
    if name not in GENERATORS:
        raise ValueError(f"unknown data set {name!r}; choose from {', '.join(GENERATORS)}")
    path = set_dir(name, scale, root)
    manifest = path.with_name(path.name + ".json")
    wanted = {"set": name, "scale": scale, "generator": GENERATOR_VERSION}
    if not force and manifest.exists():
        recorded = json.loads(manifest.read_text())
        files = _files(path)
        if {k: recorded.get(k) for k in wanted} == wanted and recorded.get("files") == len(files):
            return DataSet(name, scale, path, files, int(recorded["bytes"]))
    manifest.unlink(missing_ok=True)
    if path.exists():
        shutil.rmtree(path)
    GENERATORS[name](path, scale)
    files = _files(path)
    total = sum(p.stat().st_size for p in files)
    manifest.write_text(json.dumps({**wanted, "files": len(files), "bytes": total}, indent=2))
    return DataSet(name, scale, path, files, total)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "sets", nargs="*", default=list(GENERATORS), help="ct, big, tiny (default: all)"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="shrink counts (e.g. 0.1)")
    parser.add_argument(
        "--out", type=Path, default=DATA_DIR, help="data root (default: benchmarks/data)"
    )
    parser.add_argument("--force", action="store_true", help="regenerate even if present")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    for name in args.sets:
        data = ensure(name, args.scale, args.out, force=args.force)
        print(f"{name}: {len(data.files)} files, {data.megabytes:.1f} MB in {data.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
