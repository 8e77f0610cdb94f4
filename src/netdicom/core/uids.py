"""Fixed UIDs the protocol engine needs (PS3.6, PS3.7 Annex A, PS3.8 Annex A)."""

from __future__ import annotations

from typing import Final

APPLICATION_CONTEXT: Final = "1.2.840.10008.3.1.1.1"

IMPLICIT_VR_LE: Final = "1.2.840.10008.1.2"
EXPLICIT_VR_LE: Final = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LE: Final = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BE: Final = "1.2.840.10008.1.2.2"  # retired: accepted, never produced

VERIFICATION: Final = "1.2.840.10008.1.1"

PATIENT_ROOT_FIND: Final = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_MOVE: Final = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_ROOT_GET: Final = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_FIND: Final = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE: Final = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET: Final = "1.2.840.10008.5.1.4.1.2.2.3"

# Our implementation class UID lives under the 2.25 arc (a UUID as an integer, PS3.5 §B.2),
# which needs no registered root. Fixed per release line so peers can recognise us.
IMPLEMENTATION_CLASS_UID: Final = "2.25.216736159633428932476436371806593417373"
IMPLEMENTATION_VERSION_NAME: Final = "NETDICOM_010"  # at most 16 characters (PS3.7 D.3.3.2)
