"""The DICOM Upper Layer state machine (PS3.8 §9.2) as data plus pure actions."""
