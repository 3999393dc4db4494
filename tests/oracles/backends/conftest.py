"""One set of warm workers for the system variants: the references and every backend in VARIANTS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oracles.registry import REFERENCES, VARIANTS
from oracles.session import OracleSession


@pytest.fixture(scope="session")
def variant_session() -> Iterator[OracleSession]:
    """eager, ort-noopt and the seven variants, started once (their imports and warm-ups overlap)."""
    with OracleSession([*REFERENCES, *VARIANTS], timeout=120) as session:
        yield session
