"""`cds.rulebook.load` refuses a broken rule directory with a RuleFileError naming the file, the
rule and the problem; so do `create_app` and the `cds` command (exit 2, message on stderr).

Each test copies the bundled `rules/` into tmp_path and breaks one thing in the parsed YAML, so
the tests do not depend on the exact wording or layout of the rule files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import cds.rulebook
from cds import create_app
from cds.config import BUNDLED_RULES
from cds.errors import RuleFileError
from tests.replay import FIXTURE_CONFIG, FIXTURES

CDS = Path(sys.executable).parent / "cds"
LABS = "10-labs.yaml"


@pytest.fixture()
def rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(BUNDLED_RULES, target)
    return target


def _rewrite(path: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _first_with(data: dict[str, Any], fact: str) -> dict[str, Any]:
    """The first rule of a stratum file with a pattern on `fact`."""
    return next(r for r in data["rules"] if any(fact in p for p in r["when"]))


def _pattern(rule: dict[str, Any], fact: str) -> dict[str, Any]:
    return next(p for p in rule["when"] if fact in p)


def _load_error(rules: Path) -> RuleFileError:
    with pytest.raises(RuleFileError) as raised:
        cds.rulebook.load(rules)
    return raised.value


def _assert_names(error: RuleFileError, path: Path, rule_id: str | None, problem: str) -> None:
    message = str(error)
    assert str(path) in message
    assert path.name in message
    assert error.path == str(path)
    if rule_id is not None:
        assert f"rule {rule_id!r}" in message
        assert error.rule == rule_id
    assert problem in message
    assert problem in error.problem


def _lab_rule_id(rules: Path) -> str:
    data = yaml.safe_load((rules / LABS).read_text(encoding="utf-8"))
    return _first_with(data, "lab")["id"]


def test_the_unbroken_copy_loads(rules):
    # the YAML round trip the other tests use does not itself break anything
    _rewrite(rules / LABS, lambda data: None)
    copied = cds.rulebook.load(rules)
    bundled = cds.rulebook.load(BUNDLED_RULES)
    assert [r.id for r in copied.rules] == [r.id for r in bundled.rules]


def test_missing_source(rules):
    rule_id = _lab_rule_id(rules)
    _rewrite(rules / LABS, lambda d: _first_with(d, "lab").pop("source"))
    _assert_names(_load_error(rules), rules / LABS, rule_id, "'source' is missing or empty")


def test_empty_source(rules):
    rule_id = _lab_rule_id(rules)
    _rewrite(rules / LABS, lambda d: _first_with(d, "lab").update(source="  "))
    _assert_names(_load_error(rules), rules / LABS, rule_id, "'source' is missing or empty")


def test_unknown_fact_type(rules):
    rule_id = _lab_rule_id(rules)

    def change(data: dict) -> None:
        pattern = _pattern(_first_with(data, "lab"), "lab")
        pattern["labz"] = pattern.pop("lab")

    _rewrite(rules / LABS, change)
    _assert_names(_load_error(rules), rules / LABS, rule_id, "unknown fact type 'labz'")


def test_unknown_field(rules):
    rule_id = _lab_rule_id(rules)
    _rewrite(rules / LABS, lambda d: _pattern(_first_with(d, "lab"), "lab")["lab"].update(
        newest=True))
    _assert_names(_load_error(rules), rules / LABS, rule_id, "unknown field lab.newest")


def test_unknown_operator(rules):
    rule_id = _lab_rule_id(rules)
    _rewrite(rules / LABS, lambda d: _pattern(_first_with(d, "lab"), "lab")["lab"].update(
        value={"below": 180}))
    _assert_names(_load_error(rules), rules / LABS, rule_id, "field 'value': unknown operator "
                                                             "'below'")


def test_unknown_value_set_name(rules):
    rule_id = _lab_rule_id(rules)
    _rewrite(rules / LABS, lambda d: _pattern(_first_with(d, "lab"), "lab")["lab"].update(
        test="serum-b12-typo"))
    _assert_names(_load_error(rules), rules / LABS, rule_id,
                  "unknown value set ['serum-b12-typo']")


def test_unknown_value_set_name_in_a_list(rules):
    rule_id = _lab_rule_id(rules)
    _rewrite(rules / LABS, lambda d: _pattern(_first_with(d, "lab"), "lab")["lab"].update(
        test={"in": ["serum-b12", "no-such-test"]}))
    _assert_names(_load_error(rules), rules / LABS, rule_id, "unknown value set ['no-such-test']")


def test_duplicate_rule_id_in_one_file(rules):
    data = yaml.safe_load((rules / LABS).read_text(encoding="utf-8"))
    first, second = data["rules"][0]["id"], data["rules"][1]["id"]
    assert first != second
    _rewrite(rules / LABS, lambda d: d["rules"][1].update(id=first))
    _assert_names(_load_error(rules), rules / LABS, first, "rule id is not unique")


def test_duplicate_rule_id_across_files(rules):
    first = yaml.safe_load((rules / LABS).read_text(encoding="utf-8"))["rules"][0]["id"]
    later = sorted(rules.glob("[0-9][0-9]-*.yaml"))[-1]
    assert later.name != LABS
    _rewrite(later, lambda d: d["rules"][0].update(id=first))
    _assert_names(_load_error(rules), later, first, "rule id is not unique")


def test_invalid_yaml(rules):
    path = sorted(rules.glob("[0-9][0-9]-*.yaml"))[2]
    path.write_text("stratum: broken\nrules: [\n  - id: x: y\n", encoding="utf-8")
    error = _load_error(rules)
    _assert_names(error, path, None, "cannot be read as YAML")
    assert error.rule is None


def test_yaml_that_is_not_a_mapping(rules):
    (rules / LABS).write_text("- just\n- a list\n", encoding="utf-8")
    _assert_names(_load_error(rules), rules / LABS, None, "the file must be a mapping")


def test_assessment_on_a_slot_no_earlier_stratum_sets(rules):
    # the first stratum has no earlier strata, so any assessment slot is unknown to it
    rule_id = _lab_rule_id(rules)
    _rewrite(rules / LABS, lambda d: _first_with(d, "lab")["when"].append(
        {"assessment": {"phase": "repletion"}}))
    _assert_names(_load_error(rules), rules / LABS, rule_id,
                  "no earlier stratum sets slot assessment.phase")


def test_assessment_on_a_slot_set_only_by_its_own_stratum(rules):
    # a stratum sees only the slots of *earlier* strata: a slot it sets itself is refused
    rulebook = cds.rulebook.load(rules)
    earlier: set[str] = set()
    for index, stratum in enumerate(rulebook.strata):
        own = {slot for r in stratum.rules for slot in r.then.set} - earlier
        if index > 0 and own:
            break
        earlier |= own
    assert earlier and own, "the bundled rules have no later stratum that sets a new slot"
    slot, known = sorted(own)[0], sorted(earlier)[0]
    path = Path(stratum.path)
    rule_id = stratum.rules[0].id
    # the control: a slot an earlier stratum sets is accepted in the same place
    _rewrite(path, lambda d: d["rules"][0]["when"].append(
        {"assessment": {known: {"exists": True}}}))
    cds.rulebook.load(rules)
    _rewrite(path, lambda d: d["rules"][0]["when"].append({"assessment": {slot: True}}))
    _assert_names(_load_error(rules), path, rule_id,
                  f"no earlier stratum sets slot assessment.{slot}")


def test_create_app_raises_the_same_error(rules):
    rule_id = _lab_rule_id(rules)
    _rewrite(rules / LABS, lambda d: _first_with(d, "lab").pop("source"))
    expected = str(_load_error(rules))
    with pytest.raises(RuleFileError) as raised:
        create_app({**FIXTURE_CONFIG, "RULES_DIR": str(rules)})
    assert str(raised.value) == expected
    _assert_names(raised.value, rules / LABS, rule_id, "'source' is missing or empty")


def test_create_app_with_only_rules_dir_raises(rules):
    _rewrite(rules / LABS, lambda d: _pattern(_first_with(d, "lab"), "lab")["lab"].update(
        value={"below": 180}))
    with pytest.raises(RuleFileError, match="unknown operator 'below'"):
        create_app({"RULES_DIR": str(rules)})


def test_cli_call_exits_2_with_the_message_on_stderr(rules, tmp_path):
    rule_id = _lab_rule_id(rules)
    _rewrite(rules / LABS, lambda d: _pattern(_first_with(d, "lab"), "lab").update(
        labz=_pattern(_first_with(d, "lab"), "lab").pop("lab")))
    expected = str(_load_error(rules))
    env = {**os.environ, "CDS_RULES_DIR": str(rules), "CDS_DB": str(tmp_path / "cds.sqlite3")}
    done = subprocess.run([str(CDS), "call", "b12-patient-view", str(FIXTURES / "pv-no-labs.json")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert f"rule {rule_id!r}" in done.stderr
    assert "unknown fact type 'labz'" in done.stderr
    assert LABS in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_cli_call_with_the_bundled_rules_succeeds(tmp_path):
    # the control: the same command and fixture work when the rules are sound
    env = {**os.environ, "CDS_RULES_DIR": str(BUNDLED_RULES),
           "CDS_DB": str(tmp_path / "cds.sqlite3")}
    done = subprocess.run([str(CDS), "call", "b12-patient-view", str(FIXTURES / "pv-no-labs.json")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"cards"' in done.stdout
