"""A malformed rule file stops start-up with an error naming the file, the rule and the problem."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cds import create_app, rulebook
from cds.config import BUNDLED_RULES
from cds.errors import RuleFileError


@pytest.fixture()
def rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(BUNDLED_RULES, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


LABS = "10-labs.yaml"
PHASE = "40-phase.yaml"
CASES = {
    "missing-source": (LABS, '    source: "NICE NG239 (2024) 1.2, serum total B12 thresholds '
                       '(b12-reference.md §2)"\n', "", "b12-serum-deficient",
                       "'source' is missing or empty"),
    "unknown-key": (LABS, '    source: "NICE NG239 (2024) 1.2, serum total B12 thresholds',
                    '    sauce: "NICE', "b12-serum-deficient", "unknown keys ['sauce']"),
    "unknown-fact": (LABS, "      - lab: {test: serum-b12, latest: true, current: true, "
                     "comparator: {in:", "      - labz: {test: serum-b12, latest: true, "
                     "current: true, comparator: {in:", "b12-serum-deficient",
                     "unknown fact type 'labz'"),
    "unknown-field": (LABS, "{test: serum-b12, latest: true, current: true, comparator: {in:",
                      "{test: serum-b12, newest: true, current: true, comparator: {in:",
                      "b12-serum-deficient", "unknown field lab.newest"),
    "unknown-operator": (LABS, 'comparator: {in: ["=", "<", "<="]}, value: {lt: 180}',
                         'comparator: {in: ["=", "<", "<="]}, value: {below: 180}',
                         "b12-serum-deficient", "unknown operator 'below'"),
    "unknown-valueset": (LABS, "{test: serum-b12, latest: true, current: true, comparator: {in:",
                         "{test: serum-b12x, latest: true, current: true, comparator: {in:",
                         "b12-serum-deficient", "unknown value set ['serum-b12x']"),
    "duplicate-id": (LABS, "  - id: b12-serum-indeterminate", "  - id: b12-serum-deficient",
                     "b12-serum-deficient", "rule id is not unique"),
    "late-slot": (LABS, "      - lab: {test: serum-b12, latest: true, current: false}",
                  "      - assessment: {phase: repletion}", "b12-serum-stale",
                  "no earlier stratum sets slot assessment.phase"),
    "number-expected": (PHASE, "      - patient: {age_years: {lt: 18}}",
                        '      - patient: {age_years: {lt: "18"}}', "scope-child",
                        "field 'age_years': lt takes a number"),
    "bad-indicator": (PHASE, "      set: {phase: out-of-scope}\n      priority: 100\n      note: "
                      '"Age', "      set: {phase: out-of-scope}\n      indicator: loud\n      "
                      'note: "Age', "scope-child", "'indicator' must be one of"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_malformed_rule_names_file_rule_and_problem(rules, case):
    filename, old, new, rule_id, problem = CASES[case]
    _edit(rules / filename, old, new)
    with pytest.raises(RuleFileError) as raised:
        rulebook.load(rules)
    message = str(raised.value)
    assert filename in message
    assert f"rule {rule_id!r}" in message
    assert problem in message


def test_invalid_yaml_names_the_file(rules):
    (rules / PHASE).write_text("stratum: phase\nrules: [\n  - id: x: y\n")
    with pytest.raises(RuleFileError, match=r"40-phase\.yaml: cannot be read as YAML"):
        rulebook.load(rules)


def test_valueset_without_source_is_refused(rules):
    _edit(rules / "valuesets" / "labs.yaml", "  source: LOINC 72160-5; b12-reference.md §4\n", "")
    with pytest.raises(RuleFileError, match=r"labs\.yaml: rule 'active-b12': 'source' is missing"):
        rulebook.load(rules)


def test_create_app_refuses_broken_rules(rules):
    _edit(rules / LABS, "  - id: b12-serum-indeterminate", "  - id: b12-serum-deficient")
    with pytest.raises(RuleFileError, match="rule id is not unique"):
        create_app({"RULES_DIR": str(rules)})


def test_cli_exits_2_with_the_message_on_stderr(rules):
    _edit(rules / LABS, "  - id: b12-serum-indeterminate", "  - id: b12-serum-deficient")
    cds = Path(sys.executable).parent / "cds"
    fixture = Path(__file__).parent.parent / "fhir_fixtures" / "pv-no-labs.json"
    done = subprocess.run([str(cds), "call", "b12-patient-view", str(fixture)],
                          env={**os.environ, "CDS_RULES_DIR": str(rules)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "rule 'b12-serum-deficient': rule id is not unique" in done.stderr
    assert done.stdout == ""
