"""The durable-rules wrapper: sessions never leak, unmatched facts never raise, threads are safe,
order is deterministic."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from cds import rulebook
from cds.config import BUNDLED_RULES
from cds.engine import Engine


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(rulebook.load(BUNDLED_RULES))


def _facts(n: int, b12: float = 150.0) -> list[dict]:
    return [
        {"type": "patient", "age_years": 40 + n % 40, "sex": "female"},
        {"type": "lab", "test": "serum-b12", "value": b12, "unit": "ng/L", "comparator": "=",
         "date": "2026-05-01", "age_days": 31, "current": True, "latest": True,
         "ref": f"Observation/b12-{n}", "value_text": f"{b12:g} ng/L"},
        {"type": "treatment", "doses": 0, "prior_course": False, "active_order": False},
        {"type": "loading", "variant": "standard", "given": 0, "required": 11, "remaining": 11,
         "complete": False, "open_ended": False},
    ]


def test_three_thousand_sessions_never_exhaust_the_engine(engine):
    # durable-rules holds ~1024 live sessions per ruleset; every session must be deleted.
    for n in range(3_000):
        result = engine.evaluate(_facts(n, b12=100 + n % 400))
        assert result.slots["phase"] in {"repletion", "insufficient-data", "not-indicated"}


def test_facts_no_rule_matches_do_not_raise(engine):
    facts = [{"type": "patient", "age_years": 50, "sex": "male"},
             {"type": "unheard-of", "x": 1},
             {"type": "lab", "test": "potassium", "value": 4.1, "unit": "mmol/L",
              "comparator": "=", "current": True, "latest": True, "ref": "Observation/k"}]
    result = engine.evaluate(facts)
    assert result.slots == {"neurologic": False, "phase": "insufficient-data"}
    assert result.rule_ids == ["neuro-none-recorded", "phase-insufficient-no-current-b12"]


def test_only_a_patient_gives_insufficient_data(engine):
    result = engine.evaluate([{"type": "patient", "age_years": 60, "sex": "female"}])
    assert result.slots["phase"] == "insufficient-data"
    assert result.lists["lab_orders"][0]["loinc"] == "2132-9"


def test_evaluation_is_deterministic(engine):
    first, second = engine.evaluate(_facts(1)), engine.evaluate(_facts(1))
    assert first.rule_ids == second.rule_ids == [
        "b12-serum-deficient", "neuro-none-recorded", "deficiency-serum-b12",
        "phase-repletion-untreated", "monitor-early-response", "monitor-week-8"]
    assert first.slots == second.slots


def test_threads_get_the_same_answers_as_sequential(engine):
    cases = [_facts(n, b12=b12) for n, b12 in enumerate([90, 250, 400] * 40)]
    sequential = [(e.slots, e.rule_ids) for e in map(engine.evaluate, cases)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            threaded = [(e.slots, e.rule_ids) for e in pool.map(engine.evaluate, cases)]
            assert threaded == sequential


def test_outranked_rules_do_not_stand(engine):
    facts = [{"type": "patient", "age_years": 50, "sex": "male"},
             {"type": "lab", "test": "serum-b12", "value": 250, "unit": "ng/L",
              "comparator": "=", "current": True, "latest": True, "ref": "Observation/b"},
             {"type": "lab", "test": "mma", "value": 0.5, "unit": "umol/L", "comparator": "=",
              "current": True, "latest": True, "ref": "Observation/m"},
             {"type": "treatment", "doses": 0, "prior_course": False, "active_order": False}]
    result = engine.evaluate(facts)
    assert result.slots["deficiency"] == "confirmed"
    assert "deficiency-indeterminate-unconfirmed" not in result.rule_ids
    assert [f.rule.id for f in result.overridden] == ["deficiency-indeterminate-unconfirmed"]
