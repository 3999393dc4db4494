from __future__ import annotations

from fuzzer.generate.generator import generate
from fuzzer.judge.compare import Discrepancy, Finding
from fuzzer.triage.signature import culprit, family, message_key, normalize_message, signature
from oracles.base import Outcome


def crash(message: str, details: str = "", backend: str = "tvm", phase: str = "compile") -> Finding:
    outcome = Outcome("error", phase=phase, exc_type="InternalError", message=message, details=details)
    return Finding(backend, "crash", outcome=outcome)


def test_messages_differing_only_in_numbers_names_and_paths_normalize_alike() -> None:
    a = "Check failed: (dim < 4) is false: /tmp/x/a.cc:12 tensor t3 at 0x7ffe12 has shape [2, 3]"
    b = "Check failed: (dim < 5) is false: /home/y/b.cc:99 tensor t17 at 0xdeadbeef has shape [7, 1]"
    assert normalize_message(a) == normalize_message(b)
    assert normalize_message(a) != normalize_message("Segmentation fault in FuseOps")


def test_normalization_keeps_op_names_but_strips_node_names_and_dtypes() -> None:
    text = "Name:'n3_Conv0' node %lv12 of conv2d has float32 input, expected int64"
    assert normalize_message(text) == "Name:'NAME' node NAME of conv2d has NAME input, expected NAME"
    assert normalize_message("got float32") == normalize_message("got float16")


def test_culprit_names_the_failing_pass_or_operator_of_each_compiler() -> None:
    noted = Outcome("error", message="InternalError: Check failed", details="Traceback...\nrelax pass: LegalizeOps")
    assert culprit(noted) == "LegalizeOps"
    frontend = Outcome("error", message="Error converting operator Pad, with inputs: [x0]")
    assert culprit(frontend) == "Pad"
    ort = Outcome("error", message="[ONNXRuntimeError] : 6 : Non-zero status code returned while running Conv node.")
    assert culprit(ort) == "Conv"
    inductor = Outcome("error", message="LoweringException: AssertionError:\n  target: aten.convolution.default")
    assert culprit(inductor) == "aten.convolution"
    source = Outcome("error", message="Check failed at /work/tvm/src/relax/transform/fuse_ops.cc:412: bad")
    assert culprit(source) == "fuse_ops"
    assert culprit(Outcome("error", message="something went wrong")) == ""


def test_crash_signature_depends_on_backend_phase_type_message_shape_and_culprit() -> None:
    graph = generate(0)
    first = crash("x 1", "relax pass: FuseOps")
    assert signature(first, graph) == signature(crash("x 22", "relax pass: FuseOps"), graph)
    assert signature(first, graph) != signature(crash("x 1", "relax pass: FuseOps", phase="run"), graph)
    assert signature(first, graph) != signature(crash("x 1", "relax pass: LegalizeOps"), graph)
    assert signature(first, graph) != signature(crash("y 1", "relax pass: FuseOps"), graph)
    assert signature(first, graph).startswith("tvm-crash-compile-InternalError-FuseOps-")


def test_crash_signature_ignores_the_graph_and_mismatch_signature_is_backend_and_op_types() -> None:
    assert signature(crash("boom"), generate(0)) == signature(crash("boom"), generate(1))
    graph = generate(0)
    finding = Finding("ort", "mismatch", "ort-noopt", Discrepancy("t1", "values"))
    assert signature(finding, graph).startswith("ort-mismatch-" + "+".join(graph.op_types())[:20])
    assert signature(finding, graph) != signature(Finding("tvm", "mismatch", "ort-noopt"), graph)


def test_a_wrong_gradient_and_a_wrong_forward_result_of_one_graph_are_two_bugs() -> None:
    graph = generate(0)
    forward = Finding("inductor-grad", "mismatch", "eager", Discrepancy("t1", "values"))
    backward = Finding("inductor-grad", "mismatch", "eager", Discrepancy("grad:x0", "values"))
    second_shape = Finding("inductor-dynamic", "mismatch", "eager", Discrepancy("shape2:t1", "values"))
    assert (forward.kind, backward.kind, second_shape.kind) == ("mismatch", "mismatch-grad", "mismatch-shape2")
    assert signature(backward, graph).startswith("inductor-grad-mismatch-grad-")
    assert signature(forward, graph) != signature(backward, graph)
    assert signature(forward, graph) == signature(
        Finding("inductor-grad", "mismatch", "eager", Discrepancy("t2", "values")), graph
    )


def test_a_headline_that_announces_the_next_line_takes_that_line_into_the_signature() -> None:
    graph = generate(0)
    details = "Traceback ...\nInternalError: LLVM module verification failed:\n{}\n  %9 = fcmp oeq i1 %5, %8\n"

    def verification(error: str) -> Finding:
        return crash("LLVM module verification failed:", details.format(error))

    fcmp = verification("Invalid operand types for FCmp instruction")
    assert message_key(fcmp.outcome).endswith("Invalid operand types for FCmp instruction")
    assert signature(fcmp, graph) != signature(verification("Instruction does not dominate all uses!"), graph)


def test_one_frontend_bug_on_other_shapes_ranks_and_dtypes_normalizes_alike() -> None:
    message = (
        "TypeError: Binary operators must have the same datatype for both operands. However, "
        'R.subtract(R.const(1.0, "float32"), lv3) uses datatype T.float32 on the LHS, and datatype '
        'T.float64 on the RHS (Type of R.Tensor((1, 1, 1), dtype="float64")).'
    )
    other = message.replace("lv3", "lv1").replace("(1, 1, 1)", "(8, 7, 5, 3)").replace("float64", "float16")
    assert normalize_message(message) == normalize_message(other)
    assert "conv2d" in normalize_message("no schedule for conv2d_nchw at lv2")


def test_messages_naming_other_intrinsics_ssa_values_or_scalar_shapes_normalize_alike() -> None:
    acos = 'unknown intrinsic ir.Op(name="tirx.acos") for lv3: R.Tensor((), dtype="float16")'
    cosh = 'unknown intrinsic ir.Op(name="tirx.cosh") for lv: R.Tensor((4,), dtype="float16")'
    assert normalize_message(acos) == normalize_message(cosh)


def test_a_constant_operand_and_a_variable_operand_normalize_alike() -> None:
    variable = "R.multiply(lv1, x0) uses datatype T.float16"
    constant = 'R.multiply(lv1, metadata["ir.GenericConst"][0]) uses datatype T.float16'
    assert normalize_message(variable) == normalize_message(constant)


def test_the_relax_call_a_type_error_prints_is_not_part_of_the_signature() -> None:
    """Two converters that build float32 values for a float16 graph (Selu, ThresholdedRelu) fail in
    whatever binary op they emit: the message template says what broke, the printed call does not."""
    selu = (
        "Binary operators must have the same datatype for both operands.  However, "
        'R.subtract(R.const(1.0, "float32"), lv6) uses datatype T.float32 on the LHS (Type of '
        'R.Tensor((), dtype="float32")), and datatype T.float16 on the RHS (Type of '
        'R.Tensor((1, 1, 1, 1), dtype="float16")).'
    )
    thresholded = (
        "Binary operators must have the same datatype for both operands.  However, R.multiply(lv14, "
        'lv12) uses datatype T.float32 on the LHS (Type of R.Tensor((6, 2), dtype="float32")), and '
        'datatype T.float16 on the RHS (Type of R.Tensor((6, 2), dtype="float16")).'
    )
    assert normalize_message(selu) == normalize_message(thresholded)
    assert "Binary operators must have the same datatype" in normalize_message(selu)
    other = "broadcast_to expects the input shape to have the number of ndim at least as the input tensor's."
    assert normalize_message(other) != normalize_message(selu)


def test_ops_sharing_a_converter_base_share_a_family_but_table_rows_keep_their_own_name() -> None:
    assert family("ReduceL1") == family("ReduceLogSum") == "Reduce"
    # HardSigmoid and LeakyRelu are rows of one table, but each has its own converter: an alpha
    # mishandled in one is not the other's bug.
    assert (family("HardSigmoid"), family("LeakyRelu"), family("Add")) == ("HardSigmoid", "LeakyRelu", "Add")
