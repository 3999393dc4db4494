"""Every system variant runs a real case, agrees with the reference of its own frontend and records
what its compile fired."""

from __future__ import annotations

import pytest

from fuzzer.judge import judge_case
from oracles.registry import REFERENCES, VARIANTS
from oracles.session import OracleSession
from tests.fuzzer.handmade import conv_matmul_case


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_agrees_with_its_reference_on_a_fusable_conv_matmul_graph(
    variant_session: OracleSession, variant: str
) -> None:
    outcomes, verdict = judge_case(variant_session, conv_matmul_case(), None, [variant, *REFERENCES])
    assert outcomes[variant].status == "ok", outcomes[variant].details or outcomes[variant].message
    assert verdict.kind == "consistent", verdict.to_json()
    assert outcomes[variant].optimizations, "a variant records what its compile fired, as its plain system does"
