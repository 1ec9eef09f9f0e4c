"""Fixtures of the SMTP tests: our operator and a listed peer (one CA), and our gateway.

Test modules that still define their own ``ca``/``here``/``peer``/``port`` override these.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.smtp_peers import Operator, gateway, make_operator

HERE = "hopital.mssante.test"
PEER = "clinique.peer.test"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def here(ca: trustme.CA, tmp_path: Path, settings: Any) -> Operator:
    """Us: our certificates and settings for the domain ``HERE``."""
    operator = make_operator(ca, HERE, tmp_path / "here")
    operator.settings_for(settings)
    return operator


@pytest.fixture
def peer(ca: trustme.CA, tmp_path: Path) -> Operator:
    """Another operator, listed on the liste blanche for ``PEER``."""
    operator = make_operator(ca, PEER, tmp_path / "peer")
    operator.list()
    return operator


@pytest.fixture
def port(here: Operator) -> Iterator[int]:
    """Our SMTP gateway, listening; its port."""
    with gateway(here) as controller:
        yield controller.port
