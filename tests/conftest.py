"""Shared fixtures: one set of warm backend workers for every test that needs real compilers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oracles.registry import REFERENCES, SYSTEMS
from oracles.session import OracleSession

ALL_BACKENDS = (*REFERENCES, *SYSTEMS)


@pytest.fixture(scope="session")
def real_session() -> Iterator[OracleSession]:
    """eager, ort-noopt, ort, tvm and inductor, started once (imports and warm-up cost ~20 s)."""
    with OracleSession(list(ALL_BACKENDS), timeout=120) as session:
        yield session
