"""`cds lint`: check the rule directory, its value sets and its fixture coverage.

Findings: a file that does not load (schema, unknown value-set reference, missing source: see
`rulebook.load`), a malformed code (LOINC or SNOMED CT check digit, ICD-10-CM or RxNorm shape),
and a rule without a fixture where it fires or without one where it stays silent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from cds import rulebook
from cds.errors import RuleFileError

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_ICD10CM = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
_VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6], [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VERHOEFF_P = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]
for _ in range(7):
    _VERHOEFF_P.append([[1, 5, 7, 6, 2, 8, 3, 0, 9, 4][d] for d in _VERHOEFF_P[-1]])


def loinc_valid(code: str) -> bool:
    """LOINC codes end in a mod-10 (Luhn) check digit: NNNNN-C."""
    match = re.fullmatch(r"(\d{1,7})-(\d)", code)
    if not match:
        return False
    total = 0
    for i, ch in enumerate(reversed(match.group(1))):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return (10 - total % 10) % 10 == int(match.group(2))


def snomed_valid(code: str) -> bool:
    """SNOMED CT identifiers end in a Verhoeff check digit."""
    if not re.fullmatch(r"\d{6,18}", code):
        return False
    check = 0
    for i, ch in enumerate(reversed(code)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(ch)]]
    return check == 0


def _code_problem(code: rulebook.Code) -> str | None:
    value = code.code
    if code.system == LOINC and not loinc_valid(value):
        return f"LOINC {value}: bad format or check digit"
    if code.system == SNOMED and not snomed_valid(value):
        return f"SNOMED CT {value}: bad format or check digit"
    if code.system == ICD10CM and not (code.prefix or _ICD10CM.match(value)):
        return f"ICD-10-CM {value}: not of the form A00.0"
    if code.system == RXNORM and not value.isdigit():
        return f"RxNorm {value}: not a numeric RxCUI"
    return None


def _fired_per_fixture(fixtures: Path) -> dict[str, set[str]]:
    fired = {}
    for golden in sorted(fixtures.rglob("*.expected.json")):
        body = json.loads(golden.read_text()).get("body") or {}
        fired[golden.name] = {rule for card in body.get("cards", [])
                              for ext in card.get("extension", {}).values()
                              for rule in ext.get("rules", [])}
    return fired


def lint(rules_dir: Path, fixtures: Path | None) -> list[str]:
    """Every finding, as one line each; empty when the rules are clean."""
    try:
        book = rulebook.load(rules_dir)
    except RuleFileError as exc:
        return [str(exc)]
    findings = [f"{vs.id}: {problem}" for vs in book.valuesets.values() for c in vs.codes
                if (problem := _code_problem(c))]
    if fixtures is not None:
        fired = _fired_per_fixture(fixtures)
        if not fired:
            findings.append(f"{fixtures}: no golden fixtures (*.expected.json)")
        for rule in book.rules:
            if fired and not any(rule.id in r for r in fired.values()):
                findings.append(f"{rule.path}: rule {rule.id!r}: no fixture where it fires")
            if fired and all(rule.id in r for r in fired.values()):
                findings.append(f"{rule.path}: rule {rule.id!r}: no fixture where it stays silent")
    return findings
