"""Signatures and deduplication: every finding maps to one bug folder per root cause."""

from __future__ import annotations

import hashlib
import re

from fuzzer.ir import Graph
from oracles.compare import Finding

_NORMALIZERS = [
    (re.compile(r"0x[0-9a-fA-F]+"), "ADDR"),
    (re.compile(r"(/[\w.\-]+)+(:\d+)?"), "PATH"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "NAME"),
    (re.compile(r"\b[a-z]+_?\d+(_\w+)?\b"), "NAME"),  # tensor and node names such as t3, n2_Add0
    (re.compile(r"-?\d+(\.\d+)?(e[-+]?\d+)?"), "N"),
    (re.compile(r"\s+"), " "),
]


def normalize_message(message: str) -> str:
    """Strip what varies between occurrences of one bug: numbers, addresses, paths, names."""
    text = message.strip()
    for pattern, replacement in _NORMALIZERS:
        text = pattern.sub(replacement, text)
    return text[:300]


def signature(finding: Finding, graph: Graph) -> str:
    """Same signature, same bug: crashes by where and how they fail, mismatches by op types."""
    if finding.symptom == "mismatch":
        key = "+".join(graph.op_types())
        return _slug(f"{finding.backend}-mismatch-{key}")[:120] + "-" + _digest(key)
    outcome = finding.outcome
    phase = outcome.phase if outcome and outcome.phase else "unknown"
    kind = outcome.exc_type if outcome and outcome.exc_type else finding.symptom
    text = normalize_message(outcome.message or "") if outcome else ""
    return _slug(f"{finding.backend}-{finding.symptom}-{phase}-{kind}") + "-" + _digest(text)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text)
