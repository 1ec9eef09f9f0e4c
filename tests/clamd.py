"""The real clamd of `make test` (scripts/services: local EICAR signatures, RECIPES.md).

Tests that scan are marked ``needs_clamd``: `make test` always runs them (it starts clamd
and sets MSSANTE_TEST_SERVICES); a bare ``pytest`` without clamd skips them.
"""

from __future__ import annotations

import os

import pytest

from mssante.lib.clamd import ClamdClient, ClamdUnavailable

ADDRESS = os.environ.get("CLAMD_ADDRESS") or "127.0.0.1:53310"
# The EICAR test file, kept in two halves so that no scanner flags this source file.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def clamd_up() -> bool:
    try:
        return ClamdClient(ADDRESS, timeout=2).ping()
    except ClamdUnavailable:
        return False


needs_clamd = pytest.mark.skipif(
    not os.environ.get("MSSANTE_TEST_SERVICES") and not clamd_up(),
    reason=f"clamd not reachable at {ADDRESS} (runs in `make test`)",
)
