"""netdicom: a DICOM network toolkit (PS3.7/PS3.8) with a sans-IO core."""

from __future__ import annotations

__version__ = "0.1.0"
