"""`cds.engine.Engine` with the bundled rulebook: sessions are always deleted, facts no rule
matches never raise, threads agree with sequential runs, and the order of firings is fixed."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

import cds.rulebook
from cds.config import BUNDLED_RULES
from cds.engine import Engine, Evaluation
from tests.replay import FIXTURES, fixture_app

#: fixtures whose real facts (built by the pipeline) drive the comparisons
FACT_FIXTURES = ["pv-pernicious-anemia-deficient", "pv-neuro-untreated-critical",
                 "pv-maintenance-improving", "pv-no-labs", "os-metformin-deficient",
                 "osign-gastrectomy-censored"]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(cds.rulebook.load(BUNDLED_RULES))


def _patient(age: int = 55, sex: str = "female") -> dict[str, Any]:
    return {"type": "patient", "age_years": age, "sex": sex}


def _serum_b12(value: float, ref: str = "Observation/b12", current: bool = True) -> dict[str, Any]:
    return {"type": "lab", "test": "serum-b12", "value": value, "unit": "ng/L",
            "comparator": "=", "date": "2026-05-10", "age_days": 22, "current": current,
            "latest": True, "ref": ref, "value_text": f"{value:g} ng/L", "ref_low": None,
            "ref_high": None, "range_flag": None, "interpretation": None}


def _treatment(doses: int = 0) -> dict[str, Any]:
    return {"type": "treatment", "doses": doses, "first_dose": None, "last_dose": None,
            "days_since_last": None, "prior_course": False, "active_order": False}


def _loading(given: int = 0, required: int = 11, variant: str = "standard") -> dict[str, Any]:
    return {"type": "loading", "variant": variant, "given": given, "required": required,
            "remaining": max(required - given, 0), "complete": given >= required,
            "open_ended": False}


def _facts(n: int) -> list[dict[str, Any]]:
    """Distinct facts for evaluation `n`: values, refs, ages and dose counts all vary."""
    return [
        _patient(age=18 + n % 70, sex=("female", "male")[n % 2]),
        _serum_b12(60 + n % 500, ref=f"Observation/b12-{n}"),
        {"type": "condition", "concept": "pernicious-anemia", "ref": f"Condition/pa-{n}",
         "display": "Pernicious anaemia", "date": None} if n % 3 == 0 else
        {"type": "medication", "concept": "metformin", "ref": f"MedicationStatement/m-{n}",
         "display": "Metformin 500 mg", "date": None},
        _treatment(doses=n % 13),
        _loading(given=n % 13),
    ]


def _summary(result: Evaluation) -> tuple:
    """Everything an evaluation concluded, in a comparable form."""
    return (
        dict(result.slots),
        {k: list(v) for k, v in result.lists.items()},
        result.rule_ids,
        [(f.rule.id, f.refs) for f in result.firings],
        [f.rule.id for f in result.overridden],
    )


def _fixture_facts(name: str) -> list[dict[str, Any]]:
    """The engine facts the pipeline builds for one fixture request."""
    body = json.loads((FIXTURES / f"{name}.json").read_text())
    outcome = fixture_app().extensions["b12cds"].call(f"b12-{body['hook']}", body)
    return outcome.facts.engine_facts()


@pytest.fixture(scope="module")
def fixture_facts() -> list[list[dict[str, Any]]]:
    return [_fixture_facts(name) for name in FACT_FIXTURES]


# (a) sessions ---------------------------------------------------------------------------------

def test_three_thousand_sequential_evaluations_never_raise(engine):
    # durable-rules holds ~1024 live sessions per ruleset: only deleted sessions let this finish.
    first = _summary(engine.evaluate(_facts(0)))
    phases = set()
    for n in range(3_000):
        result = engine.evaluate(_facts(n))
        assert isinstance(result, Evaluation)
        assert "phase" in result.slots
        phases.add(result.slots["phase"])
    assert len(phases) > 1  # the facts really differed
    # the engine still answers exactly as it did before the 3,000 sessions
    assert _summary(engine.evaluate(_facts(0))) == first


def test_every_evaluation_uses_a_fresh_session(engine):
    # facts asserted in one evaluation never leak into the next
    deficient = engine.evaluate([_patient(), _serum_b12(100), _treatment(), _loading()])
    empty = engine.evaluate([_patient()])
    assert deficient.slots["phase"] == "repletion"
    assert empty.slots["phase"] == "insufficient-data"
    assert "b12-serum-deficient" not in empty.rule_ids


# (b) facts that no rule matches ---------------------------------------------------------------

@pytest.mark.parametrize("facts", [
    [{"type": "no-such-fact", "x": 1}],
    [_patient(), {"type": "no-such-fact", "x": 1}],
    [_patient(), {"type": "lab", "test": "potassium", "value": 4.1, "unit": "mmol/L",
                  "comparator": "=", "current": True, "latest": True, "ref": "Observation/k"}],
    [_patient(), {"type": "condition", "concept": "no-such-concept", "ref": "Condition/c"}],
    [_patient(), {"type": "order", "ref": "MedicationRequest/o", "form": "unknown"}],
    [_patient(), {"type": "lab", "test": "serum-b12"}],  # matches nothing: no value, no flags
    [_patient(), {"type": "lab", "value": None, "test": None}],  # None fields are dropped
    [],
], ids=["unknown-type-alone", "unknown-type", "lab-no-rule-reads", "unknown-concept",
        "bare-order", "lab-without-fields", "lab-all-none", "no-facts"])
def test_facts_no_rule_matches_do_not_raise(engine, facts):
    result = engine.evaluate(facts)  # MessageNotHandledException must not escape
    assert isinstance(result, Evaluation)
    assert result.slots["phase"] == "insufficient-data"
    assert "b12-serum-deficient" not in result.rule_ids


def test_unmatched_facts_do_not_change_the_answer(engine):
    base = [_patient(), _serum_b12(120), _treatment(), _loading()]
    noise = [{"type": "no-such-fact", "x": n} for n in range(5)]
    noise.append({"type": "condition", "concept": "no-such-concept", "ref": "Condition/c"})
    assert _summary(engine.evaluate([*noise, *base])) == _summary(engine.evaluate(base))


# (c) threads ----------------------------------------------------------------------------------

def test_four_threads_agree_with_sequential(engine, fixture_facts):
    cases: list[Sequence[Mapping[str, Any]]] = [*fixture_facts, *(_facts(n) for n in range(6))]
    expected = [_summary(engine.evaluate(case)) for case in cases]
    per_thread = 300
    barrier = threading.Barrier(4)
    results: dict[int, list[tuple[int, tuple]]] = {}
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        out = []
        try:
            barrier.wait(timeout=30)
            for n in range(per_thread):
                case = (n + index) % len(cases)  # threads interleave different inputs
                out.append((case, _summary(engine.evaluate(cases[case]))))
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)
        results[index] = out

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert sorted(results) == [0, 1, 2, 3]
    for out in results.values():
        assert len(out) == per_thread
        for case, summary in out:
            assert summary == expected[case]


# (d) determinism ------------------------------------------------------------------------------

def test_same_input_twice_gives_identical_rule_ids_and_slots(engine, fixture_facts):
    for facts in [*fixture_facts, _facts(7), _facts(12)]:
        first, second = engine.evaluate(facts), engine.evaluate(facts)
        assert first.rule_ids == second.rule_ids
        assert dict(first.slots) == dict(second.slots)
        assert _summary(first) == _summary(second)


def test_a_second_engine_gives_the_same_answers(engine, fixture_facts):
    other = Engine(cds.rulebook.load(BUNDLED_RULES))
    for facts in fixture_facts:
        assert _summary(other.evaluate(facts)) == _summary(engine.evaluate(facts))


def test_firings_follow_strata_and_rule_file_order(engine):
    result = engine.evaluate([_patient(), _serum_b12(100), _treatment(), _loading()])
    assert result.rule_ids == [
        "b12-serum-deficient", "neuro-none-recorded", "deficiency-serum-b12",
        "phase-repletion-untreated", "monitor-early-response", "monitor-week-8"]
    strata = [s.name for s in engine.rulebook.strata]
    positions = [strata.index(f.rule.stratum) for f in result.firings]
    assert positions == sorted(positions)
    assert result.firings[0].refs == ["Observation/b12"]


# (e) only a patient ---------------------------------------------------------------------------

@pytest.mark.parametrize("patient", [_patient(), _patient(age=80, sex="male"),
                                     {"type": "patient", "age_years": None, "sex": "unknown"}])
def test_only_a_patient_fact_gives_insufficient_data(engine, patient):
    result = engine.evaluate([patient])
    assert result.slots["phase"] == "insufficient-data"
    assert "phase-insufficient-no-current-b12" in result.rule_ids
    assert any(order.get("loinc") == "2132-9" for order in result.lists["lab_orders"])


def test_a_fixture_without_labs_gives_insufficient_data(engine):
    facts = _fixture_facts("pv-no-labs")
    assert not [f for f in facts if f["type"] == "lab"]
    assert engine.evaluate(facts).slots["phase"] == "insufficient-data"
