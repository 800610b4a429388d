"""Meta-tests: every rule fires in at least one fixture and stays silent in at least one, every
rule cites a source, and every rule id a golden names exists."""

from __future__ import annotations

import json

import pytest

from cds import rulebook
from cds.config import BUNDLED_RULES
from tests.replay import fixture_paths, golden_path

RULES = rulebook.load(BUNDLED_RULES).rules


def fired_per_fixture() -> dict[str, set[str]]:
    fired = {}
    for path in fixture_paths():
        body = json.loads(golden_path(path).read_text())["body"]
        fired[path.name] = {
            rule for card in body.get("cards", [])
            for extension in card.get("extension", {}).values()
            for rule in extension.get("rules", [])
        }
    return fired


FIRED = fired_per_fixture()


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_fires_in_some_fixture_and_not_in_another(rule):
    firing = [name for name, rules in FIRED.items() if rule.id in rules]
    silent = [name for name, rules in FIRED.items() if rule.id not in rules]
    assert firing, f"no fixture where {rule.id} fires"
    assert silent, f"no fixture where {rule.id} stays silent"


def test_goldens_name_only_existing_rules():
    known = {r.id for r in RULES}
    for name, rules in FIRED.items():
        assert rules <= known, f"{name} names unknown rules {rules - known}"


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_cites_a_source(rule):
    assert rule.source and rule.description
