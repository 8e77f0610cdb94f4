"""Requests serve does not serve on a context get a failure status, never an abort: an N-GET
(0211 Unrecognized operation) and a C-FIND on a storage context (0122 SOP class not
supported), sent by pynetdicom; the association stays usable (PS3.7 Annex C)."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE

from tests.peers import free_port, running, serve_argv

UNKNOWN = "1.2.826.0.1.3680043.9.9999.1"  # unknown to serve: accepted as storage


def test_unserved_requests_get_failure_statuses(tmp_path: Path) -> None:
    port = free_port()
    with running(serve_argv(tmp_path, port), port):
        ae = AE(ae_title="PYNETDICOM")
        ae.add_requested_context(UNKNOWN)
        ae.add_requested_context("1.2.840.10008.1.1")
        ae.dimse_timeout = 10
        assoc = ae.associate("127.0.0.1", port, ae_title="NETDICOM")
        assert assoc.is_established
        try:
            status, _ = assoc.send_n_get([(0x0010, 0x0010)], UNKNOWN, "1.2.3.4")
            assert status.Status == 0x0211
            query = Dataset()
            query.QueryRetrieveLevel = "STUDY"
            responses = list(assoc.send_c_find(query, UNKNOWN))
            assert [s.Status for s, _ in responses] == [0x0122]
            assert assoc.send_c_echo().Status == 0x0000  # still usable
        finally:
            assoc.release()
