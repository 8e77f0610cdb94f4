from __future__ import annotations

import pytest

from tests.security.certs import Pki, have_openssl, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if not have_openssl():
        pytest.skip("the openssl command line is not installed")
    return make_pki(tmp_path_factory.mktemp("pki"))
