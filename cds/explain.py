"""`cds explain`: why each rule fired or did not, for one hook request.

The engine answers; this module re-checks each rule's patterns in Python against the same facts
(the tests prove both agree on every fixture) to name the first condition that failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cds.engine import Evaluation
from cds.facts import Facts
from cds.pipeline import Outcome
from cds.rulebook import Pattern, Rule, Rulebook, Test


def passes(fact: Mapping[str, Any], test: Test) -> bool:
    """One field test, with the engine's semantics (a missing field fails all but exists)."""
    if test.op == "exists":
        return (test.field in fact) == test.value
    if test.field not in fact:
        return False
    value = fact[test.field]
    if test.op == "in":
        return any(_equal(value, v) for v in test.value)
    if test.op == "not_in":
        return not any(_equal(value, v) for v in test.value)
    if test.op == "eq":
        return _equal(value, test.value)
    if test.op == "ne":
        return not _equal(value, test.value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return {"lt": value < test.value, "lte": value <= test.value, "gt": value > test.value,
            "gte": value >= test.value}[test.op]


def _equal(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def check(rule: Rule, facts: Sequence[Mapping[str, Any]]) -> str | None:
    """None when every pattern of `rule` matches some fact; else the first failure, in words."""
    for pattern in rule.when:
        failure = _check_pattern(pattern, [f for f in facts if f.get("type") == pattern.fact])
        if failure:
            return failure
    return None


def _check_pattern(pattern: Pattern, candidates: list[Mapping[str, Any]]) -> str | None:
    if not candidates:
        return f"no {pattern.fact} fact"
    best: tuple[int, Mapping[str, Any], Test] | None = None
    for fact in candidates:
        failed = next((i for i, t in enumerate(pattern.tests) if not passes(fact, t)), None)
        if failed is None:
            return None
        if best is None or failed > best[0]:
            best = (failed, fact, pattern.tests[failed])
    assert best is not None
    _, fact, test = best
    where = fact.get("ref") or pattern.fact
    actual = repr(fact[test.field]) if test.field in fact else "absent"
    return (f"{pattern.fact}.{test.field} {test.op} {test.value!r} failed "
            f"({where}: {test.field}={actual})")


def stratum_facts(rulebook: Rulebook, facts: Facts,
                  evaluation: Evaluation) -> dict[str, list[Mapping[str, Any]]]:
    """The facts each stratum saw: the base facts plus its `assessment` fact."""
    base = [{k: v for k, v in f.items() if v is not None} for f in facts.engine_facts()]
    return {s.name: [*base, a] for s, a in zip(rulebook.strata, evaluation.assessments,
                                               strict=True)}


def explain(outcome: Outcome, rulebook: Rulebook) -> list[str]:
    """The facts, every rule's verdict and the final assessment, as lines of text."""
    facts, evaluation = outcome.facts, outcome.evaluation
    lines = ["Facts"]
    for fact in facts.engine_facts():
        shown = ", ".join(f"{k}={v}" for k, v in fact.items()
                          if k not in {"type", "ref"} and v is not None)
        lines.append(f"  {fact['type']}: {shown}" + (f"  [{fact['ref']}]" if "ref" in fact
                                                     else ""))
    lines += ["Not used"] + [f"  - {s}" for s in facts.skipped or ["(nothing)"]]
    lines += ["Missing data"] + [f"  - {g}" for g in facts.gaps or ["(nothing)"]]
    standing = {f.rule.id: f for f in evaluation.firings}
    outranked = {f.rule.id for f in evaluation.overridden}
    seen = stratum_facts(rulebook, facts, evaluation)
    lines.append("Rules")
    for stratum in rulebook.strata:
        for rule in stratum.rules:
            if rule.id in standing:
                refs = ", ".join(dict.fromkeys(standing[rule.id].refs)) or "-"
                verdict = f"FIRED        {refs}"
            elif rule.id in outranked:
                slots = ", ".join(f"{k}={evaluation.slots.get(k)}" for k in rule.then.set)
                verdict = f"OUTRANKED    fired, but a higher-priority rule set {slots}"
            else:
                verdict = f"not fired    {check(rule, seen[stratum.name])}"
            lines.append(f"  [{stratum.name}] {rule.id:45s} {verdict}")
    lines.append("Assessment")
    lines += [f"  {k} = {v}" for k, v in sorted(evaluation.slots.items())]
    lines.append("Cards")
    lines += [f"  [{c['indicator']}] {c['summary']}" for c in outcome.cards]
    return lines
