from __future__ import annotations

from fuzzer.generate import generate
from fuzzer.triage import normalize_message, signature
from oracles.base import Outcome
from oracles.compare import Discrepancy, Finding


def test_messages_differing_only_in_numbers_names_and_paths_normalize_alike() -> None:
    a = "Check failed: (dim < 4) is false: /tmp/x/a.cc:12 tensor t3 at 0x7ffe12 has shape [2, 3]"
    b = "Check failed: (dim < 5) is false: /home/y/b.cc:99 tensor t17 at 0xdeadbeef has shape [7, 1]"
    assert normalize_message(a) == normalize_message(b)
    assert normalize_message(a) != normalize_message("Segmentation fault in FuseOps")


def test_crash_signature_depends_on_backend_phase_type_and_message_shape() -> None:
    graph = generate(0)
    crash = Finding("tvm", "crash", outcome=Outcome("error", phase="compile", exc_type="TVMError", message="x 1"))
    same = Finding("tvm", "crash", outcome=Outcome("error", phase="compile", exc_type="TVMError", message="x 22"))
    other = Finding("tvm", "crash", outcome=Outcome("error", phase="run", exc_type="TVMError", message="x 1"))
    assert signature(crash, graph) == signature(same, graph)
    assert signature(crash, graph) != signature(other, graph)
    assert signature(crash, graph).startswith("tvm-crash-compile-TVMError-")


def test_mismatch_signature_is_backend_and_op_types() -> None:
    graph = generate(0)
    finding = Finding("ort", "mismatch", "ort-noopt", Discrepancy("t1", "values"))
    assert signature(finding, graph).startswith("ort-mismatch-" + "+".join(graph.op_types())[:20])
