"""Small, valid DICOM files made by the tests themselves (pydicom), for store/find/retrieve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

CT = str(CTImageStorage)
MR = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def make_dataset(
    *,
    sop_class: str = CT,
    sop_instance_uid: str | None = None,
    patient_id: str = "PAT001",
    patient_name: str = "DOE^JOHN",
    study_uid: str | None = None,
    series_uid: str | None = None,
    study_date: str = "20240102",
    modality: str = "CT",
    instance_number: int = 1,
    rows: int = 8,
    columns: int = 8,
    character_set: str | None = None,
) -> Dataset:
    ds = Dataset()
    if character_set:
        ds.SpecificCharacterSet = character_set
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance_uid or generate_uid()
    ds.StudyDate = study_date
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC1"
    ds.Modality = modality
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    pixels = (np.arange(rows * columns, dtype=np.uint16) * (instance_number + 1)) % 4096
    ds.PixelData = pixels.tobytes()
    return ds


def write_instance(
    path: Path, ds: Dataset, transfer_syntax: str = str(ExplicitVRLittleEndian)
) -> Path:
    """Write `ds` as a DICOM Part 10 file in `transfer_syntax` (uncompressed, or compressed with
    its pixel data already encapsulated)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    implicit = transfer_syntax == str(ImplicitVRLittleEndian)
    ds.save_as(path, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
    return path


def make_files(
    directory: Path,
    count: int,
    *,
    transfer_syntax: str = str(ExplicitVRLittleEndian),
    patient_id: str = "PAT001",
    study_uid: str | None = None,
    **kwargs: object,
) -> list[Path]:
    """`count` instances of one series in one study, written under `directory`."""
    study = study_uid or generate_uid()
    series = generate_uid()
    paths = []
    for number in range(1, count + 1):
        ds = make_dataset(
            patient_id=patient_id,
            study_uid=study,
            series_uid=series,
            instance_number=number,
            **kwargs,  # type: ignore[arg-type]
        )
        paths.append(write_instance(directory / f"img{number:04d}.dcm", ds, transfer_syntax))
    return paths
