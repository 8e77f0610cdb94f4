"""DIMSE services: SCU functions and SCP handlers built on the transport."""
