"""Signatures and deduplication: every finding maps to one bug folder per root cause."""

from __future__ import annotations

import hashlib
import re

from fuzzer.core.ir import Graph
from fuzzer.judge.compare import Finding
from oracles.base import Outcome
from specs import REGISTRY
from specs.base import OpSpec
from specs.elementwise import TableOp

# Op names with a digit (conv2d, max_pool3d) say where a crash is; dtypes and tensor names do not:
# one frontend bug shows up with float16 and float64 alike.
_KEPT_WORDS = re.compile(r"\w*\d+d\w*", re.IGNORECASE)


def _name_or_kept(match: re.Match[str]) -> str:
    word = match.group(0)
    return word if _KEPT_WORDS.fullmatch(word) else "NAME"


_NORMALIZERS: list[tuple[re.Pattern[str], object]] = [
    (re.compile(r"0x[0-9a-fA-F]+"), "ADDR"),
    (re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.\-+]+)+(?::\d+)?"), "PATH"),
    (re.compile(r'"[^"]*"'), '"STR"'),  # quoted names and dtypes: "tirx.acos" and "tirx.cosh" alike
    (re.compile(r"%[\w.]+|\b[lg]v\b"), "NAME"),  # TVM and fx SSA values
    (re.compile(r"\b[A-Za-z_]\w*?\d+\w*\b"), _name_or_kept),  # t3, n2_Add0, lv7, buf0, add_3
    (re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])"), "N"),
    (re.compile(r"\(\s*(?:N\s*(?:,\s*N\s*)*,?)?\)"), "(SHAPE)"),  # shapes of any rank, () included
    (re.compile(r'metadata\["STR"\]\[N\]'), "NAME"),  # a TVM constant where another run has a variable
    (re.compile(r"\s+"), " "),
]

# Where a message names the failing pass or operator, first match wins (most specific first).
_CULPRITS = [
    re.compile(r"relax pass: (\w+)"),  # noted by oracles/tvm_relax.py on the failing pass
    re.compile(r"Error converting operator (\w+)"),  # TVM ONNX frontend
    re.compile(r"target: (aten\.\w+)"),  # Inductor LoweringException
    re.compile(r"running (\w+) node"),  # ONNX Runtime kernel failure
    re.compile(r"Op \((\w+)\)"),  # ONNX Runtime graph resolution and shape inference
    re.compile(r"Op\((relax\.[\w.]+)\)"),  # TVM codegen of a Relax op
    re.compile(r"[\\/](?:src|core|onnxruntime)[\\/](?:[\w.]+[\\/])*(\w+)\.(?:cc|cpp|h)\b"),  # C++ source file
]


_RELAX_CALL = re.compile(r"\bR\.[\w.]+\(")


def strip_relax_calls(text: str) -> str:
    """Relax expressions TVM prints in type errors (R.subtract(R.const(1.0, "float32"), lv6)) become
    EXPR: which call a converter happened to emit is not the defect; the message template is."""
    parts, position = [], 0
    while found := _RELAX_CALL.search(text, position):
        depth, end = 1, found.end()
        while end < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        parts += [text[position : found.start()], "EXPR"]
        position = end
    return "".join(parts) + text[position:]


def normalize_message(message: str) -> str:
    """Strip what varies between occurrences of one bug: numbers, addresses, paths, names, the
    Relax expressions a type error prints."""
    text = strip_relax_calls(message.strip())
    for pattern, replacement in _NORMALIZERS:
        text = pattern.sub(replacement, text)  # type: ignore[arg-type]
    return text[:300]


def message_key(outcome: Outcome) -> str:
    """The headline, plus the line after it when the headline only announces what follows
    (TVM's "LLVM module verification failed with the following errors:")."""
    headline = (outcome.message or "").strip()
    if not headline.endswith(":") or headline not in outcome.details:
        return headline
    after = outcome.details.split(headline, 1)[1].strip().splitlines()
    return f"{headline} {after[0].strip()}" if after else headline


def culprit(outcome: Outcome) -> str:
    """The pass or operator a compiler's error names, or '' when it names none."""
    for text in (outcome.message or "", outcome.details or ""):
        for pattern in _CULPRITS:
            found = pattern.search(text)
            if found:
                return found.group(1)
    return ""


def crash_key(finding: Finding) -> str:
    """Backend, symptom, phase, exception type and failing pass or op: the readable part of a crash signature."""
    outcome = finding.outcome or Outcome("error")
    parts = [finding.backend, finding.symptom, outcome.phase or "unknown", outcome.exc_type or finding.symptom]
    where = culprit(outcome)
    return "-".join([*parts, where] if where else parts)


def signature(finding: Finding, graph: Graph) -> str:
    """Same signature, same bug: crashes by where and how they fail, mismatches by the op types left
    after reduction (pass the reduced graph)."""
    if finding.symptom == "mismatch":
        key = "+".join(graph.op_types())
        return _slug(f"{finding.backend}-{finding.kind}-{key}")[:120] + "-" + _digest(key)
    text = normalize_message(message_key(finding.outcome)) if finding.outcome else ""
    return _slug(crash_key(finding))[:120] + "-" + _digest(text)


def family(op: str) -> str:
    """The spec base an op shares with its siblings (Reduce for ReduceL1 ... ReduceSumSquare), or the
    op itself: one converter defect shows on every op of a family. A table row (Unary, Elementwise)
    shares only shapes with its siblings; frontends convert each row on its own."""
    spec = REGISTRY[op]
    if issubclass(spec, TableOp):
        return op
    bases = [c for c in spec.__mro__[1:] if issubclass(c, OpSpec) and c is not OpSpec]
    return bases[0].__name__ if bases else op


def triggered_signature(finding: Finding, graph: Graph, triggers: list[str]) -> str:
    """Backend, symptom (and phase for a crash), the failing op's family and what triggers it: one
    defect that crashes differently per rank, or miscomputes every op of a family, is one bug."""
    outcome = finding.outcome or Outcome("error")
    phase = [outcome.phase or "unknown"] if finding.symptom != "mismatch" else []
    key = "-".join([finding.backend, finding.kind, *phase, family(graph.nodes[-1].op), "+".join(triggers)])
    return _slug(key)[:120] + "-" + _digest(key)


def guilty_signature(plain: str, backend: str, guilty: str) -> str:
    """The signature with the guilty pass or configuration after the backend (`tvm@FoldConstant-...`):
    one symptom that two passes cause is two bugs, and the folder's name says where to look."""
    if not plain.startswith(f"{backend}-") or not guilty:
        return plain
    return f"{backend}@{_slug(guilty)[:60]}{plain[len(backend) :]}"


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text)
