"""The only module that touches durable-rules.

Each rule file (stratum) compiles to one durable-rules ruleset on one host per Engine. An evaluation
asserts the facts into a fresh, server-generated session of each ruleset in turn, collects the rules
that fired, resolves their conclusions into assessment slots, and deletes the session in `finally`.

durable-rules' sharp edges, and how this module keeps clear of them (measured with 2.0.28):
- ~1024 live sessions per ruleset, then MemoryError and later segfaults: every session is deleted
  in `finally`, and evaluations are serialised by a lock, so at most one session is ever live.
- `delete_state` segfaults on a session in which no rule fired: every session begins with a
  `__begin__` fact that an internal rule always matches; when a batch fails before that rule's
  action runs, a second `__begin__` fact is asserted first (`_settle`).
- a fact that matches no rule raises MessageNotHandledException and discards the whole batch: an
  internal `__sink__` rule matches any fact in a join that can never complete, so it never fires.
- negation is order-dependent within a batch: rules never negate; a stratum sees the slots of
  earlier strata as one `assessment` fact, complete before the stratum starts.
- a join on another fact's field errors (code 311) when that field is missing: rules compare fields
  with constants only.
- the host's background dispatch threads would run actions outside the lock: the host here has none.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from durable import engine as _durable

from cds.rulebook import Pattern, Rule, Rulebook

_BEGIN = "__begin__"


class EngineError(RuntimeError):
    """durable-rules failed while evaluating; never caused by request content."""


@dataclass(frozen=True)
class Firing:
    """One rule that fired, with the facts it matched (in pattern order)."""

    rule: Rule
    facts: tuple[Mapping[str, Any], ...]

    @property
    def refs(self) -> list[str]:
        return [f["ref"] for f in self.facts if "ref" in f]


@dataclass(frozen=True)
class Evaluation:
    """What the rules concluded: resolved slots, accumulated lists, and the firings in order.

    `firings` are the rules whose conclusions stand; `overridden` fired but every slot they set
    was won by a higher-priority rule, so they do not shape the answer.
    """

    slots: Mapping[str, Any]
    lists: Mapping[str, tuple[Any, ...]]
    firings: tuple[Firing, ...]
    overridden: tuple[Firing, ...]
    #: the `assessment` fact each stratum saw (the slots concluded before it), for explanations
    assessments: tuple[Mapping[str, Any], ...] = ()

    @property
    def rule_ids(self) -> list[str]:
        return list(dict.fromkeys(f.rule.id for f in self.firings))


class _QuietHost(_durable.Host):
    """A durable-rules host without background dispatch threads: actions run in the caller."""

    def _run(self) -> None:
        pass


def _compile_test(field: str, op: str, value: Any) -> dict:
    if op == "eq":
        return {field: value}
    if op == "ne":
        return {"$neq": {field: value}}
    if op in {"lt", "lte", "gt", "gte"}:
        return {f"${op}": {field: value}}
    if op == "in":
        return {"$or": [{field: v} for v in value]}
    if op == "not_in":
        return {"$and": [{"$neq": {field: v}} for v in value]}
    return {"$ex" if value else "$nex": {field: 1}}


def _compile_pattern(pattern: Pattern) -> dict:
    tests = [{"type": pattern.fact}]
    tests += [_compile_test(t.field, t.op, t.value) for t in pattern.tests]
    return {pattern.alias: {"$and": tests}}


class Engine:
    """Compiled rulebook; `evaluate` is thread-safe (one evaluation at a time per Engine)."""

    def __init__(self, rulebook: Rulebook) -> None:
        self.rulebook = rulebook
        self._lock = threading.Lock()
        self._collected: list[tuple[int, dict]] | None = None
        self._host = _QuietHost()
        self._names: list[str] = []
        self._fact_types: dict[str, set[str]] = {}
        tag = uuid.uuid4().hex[:8]
        definitions: dict[str, dict] = {}
        for stratum in rulebook.strata:
            name = f"b12cds_{stratum.name}_{tag}"
            rules: dict[str, dict] = {
                "__begin__": {"all": [{"p0": {"type": _BEGIN}}], "run": _noop},
                "__sink__": {
                    "all": [{"p0": {"$ex": {"type": 1}}}, {"p1": {"type": "__never__"}}],
                    "run": _noop,
                },
            }
            for index, rule in enumerate(stratum.rules):
                rules[f"r{index}"] = {
                    "all": [_compile_pattern(p) for p in rule.when],
                    "run": self._collector(index),
                }
            definitions[name] = rules
            self._names.append(name)
            self._fact_types[name] = {p.fact for r in stratum.rules for p in r.when}
        self._host.set_rulesets(definitions)  # consumes the `run` keys; not reused here

    def _collector(self, index: int):
        def run(c: Any) -> None:
            if self._collected is not None:
                self._collected.append((index, dict(c._m)))

        return run

    def evaluate(self, facts: Sequence[Mapping[str, Any]]) -> Evaluation:
        """Run every stratum over `facts` (dicts with a `type`), returning the conclusions."""
        slots: dict[str, Any] = {}
        priorities: dict[str, int] = {}
        lists: dict[str, list[Any]] = {}
        firings: list[Firing] = []
        assessments: list[dict[str, Any]] = []
        if any(not isinstance(f.get("type"), str) for f in facts):
            raise EngineError("every fact needs a 'type'")
        base = [{**{k: v for k, v in f.items() if v is not None}, "_n": n}
                for n, f in enumerate(facts)]
        for name, stratum in zip(self._names, self.rulebook.strata, strict=True):
            assessment = {"type": "assessment", **slots}
            assessments.append(assessment)
            # only the fact types this stratum's rules match: smaller batches, same firings
            wanted = self._fact_types[name]
            batch = [f for f in base if f["type"] in wanted]
            collected = self._run_session(name, [*batch, {**assessment, "_n": len(base)}])
            for index, matched in sorted(collected, key=_firing_order):
                rule = stratum.rules[index]
                ordered = tuple(_strip(matched[p.alias]) for p in rule.when)
                firings.append(Firing(rule, ordered))
                for slot, value in rule.then.set.items():
                    if slot not in slots or rule.then.priority > priorities[slot]:
                        slots[slot] = value
                        priorities[slot] = rule.then.priority
        standing: list[Firing] = []
        overridden: list[Firing] = []
        for firing in firings:
            (standing if _stands(firing.rule, slots) else overridden).append(firing)
        for firing in standing:
            for slot, values in firing.rule.then.add.items():
                bucket = lists.setdefault(slot, [])
                bucket.extend(v for v in values if v not in bucket)
        return Evaluation(slots, {k: tuple(v) for k, v in lists.items()}, tuple(standing),
                          tuple(overridden), tuple(assessments))

    def _run_session(self, ruleset: str, facts: list[dict]) -> list[tuple[int, dict]]:
        sid = uuid.uuid4().hex  # server-generated: a client's hookInstance may repeat
        batch = [{"type": _BEGIN, "sid": sid}]
        batch += [{**f, "sid": sid} for f in facts]
        with self._lock:
            self._collected = []
            asserted = False
            try:
                self._host.assert_facts(ruleset, batch)
                asserted = True
                return self._collected
            except Exception as exc:  # durable raises bare Exceptions and its own error type
                raise EngineError(f"rule engine failed on {ruleset}: {exc}") from exc
            finally:
                self._collected = None
                if asserted or self._settle(ruleset, sid):
                    self._host.delete_state(ruleset, sid)

    def _settle(self, ruleset: str, sid: str) -> bool:
        """After a failed batch, make a rule fire in the session so that it can be deleted.

        A failed batch may leave the session with its `__begin__` fact stored but its action never
        run; `delete_state` on it segfaults. A second, distinct `__begin__` fact fires the rule and
        flushes the pending actions (the collectors are off). False if even that fails: the session
        is then left alive, which is better than killing the process.
        """
        try:
            self._host.assert_fact(ruleset, {"type": _BEGIN, "sid": sid, "_n": -1})
        except Exception:  # any failure here means: do not touch the session
            return False
        return True


def _stands(rule: Rule, slots: Mapping[str, Any]) -> bool:
    """A rule that sets slots stands only if one of them kept its value; other rules always do."""
    if not rule.then.set:
        return True
    return any(slots.get(slot) == value for slot, value in rule.then.set.items())


def _noop(c: Any) -> None:
    pass


def _strip(fact: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fact.items() if k not in {"sid", "_n"}}


def _firing_order(item: tuple[int, dict]) -> tuple[int, tuple[int, ...]]:
    index, matched = item
    return index, tuple(matched[alias]["_n"] for alias in sorted(matched))
