"""Tester tooling: `cds replay`, `cds explain`, `cds lint` (through the CLI entry point)."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cds import explain, replay
from cds.cli import main
from cds.config import BUNDLED_RULES
from cds.lint import lint, loinc_valid, snomed_valid
from tests.replay import FIXTURES, fixture_app, fixture_paths

PATHS = fixture_paths()


@pytest.fixture()
def fixtures(tmp_path) -> Path:
    """A copy of three fixtures with their goldens, to break safely."""
    for name in ("pv-no-labs", "os-metformin-deficient", "pv-maintenance-improving"):
        for suffix in (".json", ".expected.json"):
            shutil.copy(FIXTURES / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    return tmp_path


def test_replay_all_fixtures_match(capsys):
    assert main(["replay", str(FIXTURES)]) == 0
    out = capsys.readouterr().out
    assert f"{len(PATHS)} matched, 0 mismatched or without golden, 0 unreadable" in out
    assert "os-metformin-deficient  (HTTP 200)" in out
    assert "      suggestion: Use the recommended schedule (update)" in out


def test_replay_names_each_difference_by_json_path(fixtures, capsys):
    golden = fixtures / "pv-no-labs.expected.json"
    data = json.loads(golden.read_text())
    data["body"]["cards"][0]["summary"] = "something else"
    data["body"]["cards"][0]["extension"]["b12cds.assessment"]["phase"] = "repletion"
    data["body"]["cards"][0]["uuid"] = "ignored-per-call-value"
    golden.write_text(json.dumps(data))
    junit = fixtures / "report.xml"
    assert main(["replay", str(fixtures), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "$.body.cards[0].summary: expected \"something else\", got \"Insufficient data" in out
    assert ('$.body.cards[0].extension.b12cds.assessment.phase: expected "repletion", '
            'got "insufficient-data"') in out
    assert "uuid" not in out.split("MISMATCH")[1].split("\n\n")[0]
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    failed = [c.get("name") for c in suite if c.find("failure") is not None]
    assert failed == ["pv-no-labs"]


def test_replay_update_rewrites_goldens(fixtures):
    golden = fixtures / "pv-no-labs.expected.json"
    expected = golden.read_text()
    golden.write_text('{"status": 500}')
    assert main(["replay", str(fixtures / "pv-no-labs.json"), "--update"]) == 0
    assert golden.read_text() == expected


def test_replay_unreadable_input_exits_2(fixtures, capsys):
    (fixtures / "broken.json").write_text("{not json")
    assert main(["replay", str(fixtures)]) == 2
    assert "broken.json  UNREADABLE" in capsys.readouterr().out
    assert main(["replay", str(fixtures / "missing.json")]) == 2


def test_replay_html_report_has_a_timeline_per_patient_with_labs(fixtures):
    page = fixtures / "report.html"
    assert main(["replay", str(fixtures), "--html", str(page)]) == 0
    text = page.read_text()
    assert "b12-cds replay: 3/3 match" in text
    assert text.count("<svg") == 2  # pv-no-labs has no labs to chart
    assert "Lab timeline (red lines: B12 injections)" in text


def test_explain_names_the_first_failed_condition(capsys):
    assert main(["explain", str(FIXTURES / "pv-indeterminate-mma-nmol-normal.json")]) == 0
    out = capsys.readouterr().out
    assert ("[labs] b12-serum-deficient" in out and
            "not fired    lab.value lt 180 failed (Observation/p05-b12: value=250.0)" in out)
    assert "deficiency-indeterminate-unconfirmed" in out
    assert "OUTRANKED    fired, but a higher-priority rule set deficiency=unlikely" in out
    assert "  phase = not-indicated" in out
    assert "Observation/p05-mma" in out


ANSWERED = [p for p in PATHS
            if json.loads(replay.golden_path(p).read_text())["status"] == 200]


@pytest.mark.parametrize("path", ANSWERED, ids=[p.name.removesuffix(".json") for p in ANSWERED])
def test_explain_agrees_with_the_engine_on_every_fixture(path):
    body = json.loads(path.read_text())
    pipeline = replay.app_for(replay.settings_of(None)).extensions["b12cds"]
    outcome = pipeline.call(f"b12-{body['hook']}", body)
    seen = explain.stratum_facts(pipeline.rulebook, outcome.facts, outcome.evaluation)
    fired = {f.rule.id for f in (*outcome.evaluation.firings, *outcome.evaluation.overridden)}
    predicted = {rule.id for stratum in pipeline.rulebook.strata for rule in stratum.rules
                 if explain.check(rule, seen[stratum.name]) is None}
    assert predicted == fired


def test_lint_is_clean_on_the_bundled_rules(capsys):
    assert main(["lint"]) == 0
    assert "0 finding(s)" in capsys.readouterr().out


def test_lint_finds_bad_codes_and_uncovered_rules(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(BUNDLED_RULES, rules)
    labs = rules / "valuesets" / "labs.yaml"
    labs.write_text(labs.read_text().replace('code: "2132-9"', 'code: "2132-8"'))
    conditions = rules / "valuesets" / "conditions.yaml"
    conditions.write_text(conditions.read_text().replace('"77386006"', '"77386007"'))
    only = tmp_path / "fixtures"
    only.mkdir()
    shutil.copy(FIXTURES / "pv-no-labs.expected.json", only)
    findings = lint(rules, only)
    assert "serum-b12: LOINC 2132-8: bad format or check digit" in findings
    assert "pregnancy: SNOMED CT 77386007: bad format or check digit" in findings
    assert any("rule 'b12-serum-deficient': no fixture where it fires" in f for f in findings)
    assert any("rule 'neuro-none-recorded': no fixture where it stays silent" in f
               for f in findings)
    assert main(["lint", str(rules), "--fixtures", str(only)]) == 1


def test_lint_reports_a_broken_rule_file(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(BUNDLED_RULES, rules)
    (rules / "40-phase.yaml").write_text("stratum: phase\nrules: []\n")
    (finding,) = lint(rules, None)
    assert "40-phase.yaml: 'rules' must be a non-empty list" in finding


@pytest.mark.parametrize("code", ["2132-9", "14685-2", "718-7", "72160-5", "13964-2"])
def test_loinc_check_digits_of_the_value_sets(code):
    assert loinc_valid(code)


@pytest.mark.parametrize("code", ["77386006", "53442002", "26452005", "430715008"])
def test_snomed_check_digits_of_the_value_sets(code):
    assert snomed_valid(code)


def test_the_fixture_app_is_the_replay_app():
    assert fixture_app().config["NOW"] == replay.REPLAY_DEFAULTS["now"]
