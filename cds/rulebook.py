"""Load and check the declarative knowledge in `rules/`: rule files, value sets, units, parameters
and regimens. Everything clinical (numbers, codes, wording of advice) lives there, not in Python.

A rule file is one *stratum*: its rules see the base facts plus the `assessment` slots concluded by
earlier strata, so no rule needs negation of a fact concluded in its own stratum. Within a stratum,
several rules may set the same slot; the highest `priority` wins (ties: the earlier rule).
Any problem stops start-up with a RuleFileError naming the file, the rule and the problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from cds.errors import RuleFileError

#: The facts the rules can match, and their fields. `cds.facts` produces exactly these.
FACT_FIELDS: dict[str, frozenset[str]] = {
    "patient": frozenset({"age_years", "sex"}),
    "lab": frozenset(
        {"test", "value", "unit", "comparator", "date", "age_days", "current", "latest",
         "ref_low", "ref_high", "range_flag", "interpretation", "ref", "value_text"}
    ),
    "condition": frozenset({"concept", "ref", "display", "date", "since_treatment"}),
    "procedure": frozenset({"concept", "ref", "display", "date", "since_treatment"}),
    "medication": frozenset({"concept", "ref", "display", "date", "since_treatment"}),
    "treatment": frozenset({"doses", "first_dose", "last_dose", "days_since_last", "prior_course",
                            "active_order", "ref"}),
    "loading": frozenset({"variant", "required", "given", "remaining", "complete", "open_ended"}),
    "series": frozenset({"test", "count", "baseline", "latest", "baseline_date", "latest_date",
                         "change_pct", "since_treatment", "ref"}),
    "order": frozenset({"ref", "form", "dose_mcg", "interval_days", "schedule_source",
                        "loading_standard", "loading_neuro", "maintenance_standard",
                        "maintenance_neuro"}),
    "assessment": frozenset(),  # its fields are the slots set by earlier strata
}
#: Fields whose values must name a value set.
CONCEPT_FIELDS = {("lab", "test"), ("series", "test"), ("condition", "concept"),
                  ("procedure", "concept"), ("medication", "concept")}
OPERATORS = {"eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "exists"}
INDICATORS = ("info", "warning", "critical")
LIST_SLOTS = {"contributors", "monitoring", "lab_orders", "suggestions"}
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_SLOT = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Code:
    system: str
    code: str
    display: str
    prefix: bool = False

    def matches(self, system: str | None, code: str | None) -> bool:
        if system != self.system or not code:
            return False
        return code.startswith(self.code) if self.prefix else code == self.code


@dataclass(frozen=True)
class ValueSet:
    id: str
    kind: str
    description: str
    source: str
    codes: tuple[Code, ...]
    text: tuple[str, ...] = ()

    def matches_code(self, codings: Iterable[tuple[str | None, str | None]]) -> bool:
        return any(c.matches(s, k) for s, k in codings for c in self.codes)

    def matches_text(self, text: str) -> bool:
        low = text.lower()
        return any(t in low for t in self.text)


@dataclass(frozen=True)
class Test:
    """One field test on a fact: `field op value`."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Pattern:
    fact: str
    alias: str
    tests: tuple[Test, ...]


@dataclass(frozen=True)
class Conclusion:
    set: Mapping[str, Any] = field(default_factory=dict)
    add: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    priority: int = 0
    indicator: str | None = None
    note: str | None = None
    headline: str | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    source: str
    when: tuple[Pattern, ...]
    then: Conclusion
    path: str
    stratum: str


@dataclass(frozen=True)
class Stratum:
    name: str
    path: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class UnitTable:
    canonical: str
    factors: Mapping[str, float]
    source: str

    def to_canonical(self, value: float, unit: str | None) -> float | None:
        """Convert `value` in `unit` to the canonical unit; None when the unit is not known."""
        factor = self.factors.get(normalise_unit(unit)) if unit else None
        return None if factor is None else value * factor


@dataclass(frozen=True)
class Rulebook:
    strata: tuple[Stratum, ...]
    valuesets: Mapping[str, ValueSet]
    units: Mapping[str, UnitTable]
    parameters: Mapping[str, Any]
    regimens: Mapping[str, Any]

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(r for s in self.strata for r in s.rules)

    def valuesets_of(self, kind: str) -> list[ValueSet]:
        return self._by_kind.get(kind, [])

    @cached_property
    def _by_kind(self) -> dict[str, list[ValueSet]]:
        out: dict[str, list[ValueSet]] = {}
        for vs in self.valuesets.values():
            out.setdefault(vs.kind, []).append(vs)
        return out

    @cached_property
    def _exact(self) -> dict[tuple[str, str], list[ValueSet]]:
        index: dict[tuple[str, str], list[ValueSet]] = {}
        for vs in self.valuesets.values():
            for code in vs.codes:
                if not code.prefix:
                    index.setdefault((code.system, code.code), []).append(vs)
        return index

    def coded(self, kinds: tuple[str, ...], codings: Iterable[tuple[str | None, str | None]]
              ) -> list[ValueSet]:
        """The value sets of `kinds` that contain any of `codings`, in definition order.

        Exact codes are looked up in an index (bundles carry thousands of observations); only
        the few prefix codes are scanned."""
        pairs = [(s, c) for s, c in codings if s and c]
        found = {vs.id for pair in pairs for vs in self._exact.get(pair, ()) if vs.kind in kinds}
        found |= {vs.id for kind in kinds for vs in self._prefixed.get(kind, ())
                  if vs.matches_code(pairs)}
        if not found:
            return []
        return [vs for kind in kinds for vs in self.valuesets_of(kind) if vs.id in found]

    @cached_property
    def _prefixed(self) -> dict[str, list[ValueSet]]:
        return {kind: [vs for vs in sets if any(c.prefix for c in vs.codes)]
                for kind, sets in self._by_kind.items()}


def normalise_unit(unit: str) -> str:
    """Fold the spellings labs use for one unit: case, micro sign, spaces."""
    return unit.strip().replace("µ", "u").replace("μ", "u").replace(" ", "").lower()


def load(directory: str | Path) -> Rulebook:
    """Load every file of the rule directory, checking each; raise RuleFileError on any problem."""
    root = Path(directory)
    if not root.is_dir():
        raise RuleFileError(str(root), "rule directory not found")
    valuesets = _load_valuesets(root / "valuesets")
    units = _load_units(root / "units.yaml")
    parameters = _load_keyed(root / "parameters.yaml")
    regimens = _load_keyed(root / "regimens.yaml")
    strata: list[Stratum] = []
    slots: set[str] = set()
    seen: set[str] = set()
    for path in sorted(root.glob("[0-9][0-9]-*.yaml")):
        stratum = _load_stratum(path, valuesets, slots, seen)
        strata.append(stratum)
        for rule in stratum.rules:
            slots.update(rule.then.set)
    if not strata:
        raise RuleFileError(str(root), "no rule files (NN-name.yaml) found")
    return Rulebook(tuple(strata), valuesets, units, parameters, regimens)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RuleFileError(str(path), f"cannot be read as YAML: {exc}") from exc


def _require_mapping(path: Path, data: Any, what: str, rule: str | None = None) -> dict:
    if not isinstance(data, dict):
        raise RuleFileError(str(path), f"{what} must be a mapping", rule=rule)
    return data


def _require_text(path: Path, data: dict, key: str, rule: str | None = None) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RuleFileError(str(path), f"'{key}' is missing or empty", rule=rule)
    return value.strip()


def _load_keyed(path: Path) -> dict[str, Any]:
    data = _require_mapping(path, _read_yaml(path), "the file")
    for key, entry in data.items():
        entry = _require_mapping(path, entry, f"entry {key!r}")
        _require_text(path, entry, "source", rule=key)
    return data


def _load_units(path: Path) -> dict[str, UnitTable]:
    tables = {}
    for test, entry in _load_keyed(path).items():
        factors = entry.get("factors")
        if not isinstance(factors, dict) or not all(
            isinstance(v, int | float) and v > 0 for v in factors.values()
        ):
            raise RuleFileError(str(path), "'factors' must map units to positive numbers",
                                rule=test)
        canonical = _require_text(path, entry, "canonical", rule=test)
        folded = {normalise_unit(str(u)): float(f) for u, f in factors.items()}
        tables[test] = UnitTable(canonical, folded, entry["source"])
    return tables


def _load_valuesets(directory: Path) -> dict[str, ValueSet]:
    valuesets: dict[str, ValueSet] = {}
    for path in sorted(directory.glob("*.yaml")):
        data = _require_mapping(path, _read_yaml(path), "the file")
        for vs_id, entry in data.items():
            entry = _require_mapping(path, entry, f"value set {vs_id!r}")
            if not _ID.match(str(vs_id)):
                raise RuleFileError(str(path), "value set id must be kebab-case", rule=vs_id)
            if vs_id in valuesets:
                raise RuleFileError(str(path), "value set id defined twice", rule=vs_id)
            codes = []
            for raw in entry.get("codes") or []:
                raw = _require_mapping(path, raw, "each code", rule=vs_id)
                for key in ("system", "display"):
                    _require_text(path, raw, key, rule=vs_id)
                code = raw.get("code") or raw.get("prefix")
                if not isinstance(code, str) or not code:
                    raise RuleFileError(str(path), "a code needs 'code' or 'prefix'", rule=vs_id)
                codes.append(Code(raw["system"], code, raw["display"], prefix="prefix" in raw))
            text = tuple(str(t).lower() for t in entry.get("text") or [])
            if not codes and not text:
                raise RuleFileError(str(path), "value set has no codes", rule=vs_id)
            valuesets[vs_id] = ValueSet(
                vs_id,
                _require_text(path, entry, "kind", rule=vs_id),
                _require_text(path, entry, "description", rule=vs_id),
                _require_text(path, entry, "source", rule=vs_id),
                tuple(codes),
                text,
            )
    if not valuesets:
        raise RuleFileError(str(directory), "no value sets found")
    return valuesets


def _load_stratum(
    path: Path, valuesets: Mapping[str, ValueSet], slots: set[str], seen: set[str]
) -> Stratum:
    data = _require_mapping(path, _read_yaml(path), "the file")
    name = _require_text(path, data, "stratum")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RuleFileError(str(path), "'rules' must be a non-empty list")
    rules = []
    for raw in raw_rules:
        rule = _parse_rule(path, name, raw, valuesets, slots)
        if rule.id in seen:
            raise RuleFileError(str(path), "rule id is not unique", rule=rule.id)
        seen.add(rule.id)
        rules.append(rule)
    return Stratum(name, str(path), tuple(rules))


def _parse_rule(
    path: Path, stratum: str, raw: Any, valuesets: Mapping[str, ValueSet], slots: set[str]
) -> Rule:
    raw = _require_mapping(path, raw, "each rule")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        raise RuleFileError(str(path), f"rule id {rule_id!r} must be kebab-case text")
    unknown = set(raw) - {"id", "description", "source", "when", "then"}
    if unknown:
        raise RuleFileError(str(path), f"unknown keys {sorted(unknown)}", rule=rule_id)
    description = _require_text(path, raw, "description", rule=rule_id)
    source = _require_text(path, raw, "source", rule=rule_id)
    when = raw.get("when")
    if not isinstance(when, list) or not when:
        raise RuleFileError(str(path), "'when' must be a non-empty list of patterns", rule=rule_id)
    patterns: list[Pattern] = []
    for item in when:
        patterns.append(_parse_pattern(path, rule_id, item, patterns, valuesets, slots))
    then = _parse_conclusion(path, rule_id, raw.get("then"))
    return Rule(rule_id, description, source, tuple(patterns), then, str(path), stratum)


def _parse_pattern(
    path: Path,
    rule_id: str,
    item: Any,
    earlier: list[Pattern],
    valuesets: Mapping[str, ValueSet],
    slots: set[str],
) -> Pattern:
    if not isinstance(item, dict) or len(item) != 1:
        raise RuleFileError(str(path), "each pattern is one mapping {fact: {field: test}}",
                            rule=rule_id)
    ((fact, body),) = item.items()
    if fact not in FACT_FIELDS:
        raise RuleFileError(str(path), f"unknown fact type {fact!r}", rule=rule_id)
    body = body or {}
    if not isinstance(body, dict):
        raise RuleFileError(str(path), f"pattern {fact!r} must map fields to tests", rule=rule_id)
    allowed = slots if fact == "assessment" else FACT_FIELDS[fact]
    tests = []
    for fname, spec in body.items():
        if fname not in allowed:
            what = "no earlier stratum sets slot" if fact == "assessment" else "unknown field"
            raise RuleFileError(str(path), f"{what} {fact}.{fname}", rule=rule_id)
        for test in _parse_tests(path, rule_id, fname, spec):
            if (fact, fname) in CONCEPT_FIELDS and test.op != "exists":
                names = test.value if isinstance(test.value, list) else [test.value]
                missing = [n for n in names if n not in valuesets]
                if missing:
                    raise RuleFileError(str(path), f"unknown value set {missing}", rule=rule_id)
            tests.append(test)
    return Pattern(fact, f"p{len(earlier)}", tuple(tests))


def _parse_tests(path: Path, rule_id: str, fname: str, spec: Any) -> list[Test]:
    """`field: value` is equality; `field: {op: value, ...}` is one test per operator."""
    if not isinstance(spec, dict):
        return [Test(fname, "eq", spec)]
    if not spec:
        raise RuleFileError(str(path), f"field {fname!r}: no test given", rule=rule_id)
    tests = []
    for op, value in spec.items():
        if op not in OPERATORS:
            raise RuleFileError(str(path), f"field {fname!r}: unknown operator {op!r}",
                                rule=rule_id)
        if op in {"in", "not_in"} and not isinstance(value, list):
            raise RuleFileError(str(path), f"field {fname!r}: {op} takes a list", rule=rule_id)
        if op == "exists" and not isinstance(value, bool):
            raise RuleFileError(str(path), f"field {fname!r}: exists takes true/false",
                                rule=rule_id)
        if op in {"lt", "lte", "gt", "gte"} and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise RuleFileError(str(path), f"field {fname!r}: {op} takes a number", rule=rule_id)
        tests.append(Test(fname, op, value))
    return tests


def _parse_conclusion(path: Path, rule_id: str, raw: Any) -> Conclusion:
    raw = _require_mapping(path, raw, "'then'", rule=rule_id)
    unknown = set(raw) - {"set", "add", "priority", "indicator", "note", "headline"}
    if unknown:
        raise RuleFileError(str(path), f"'then' has unknown keys {sorted(unknown)}", rule=rule_id)
    sets = raw.get("set") or {}
    adds = raw.get("add") or {}
    if not isinstance(sets, dict) or not isinstance(adds, dict):
        raise RuleFileError(str(path), "'set' and 'add' must be mappings", rule=rule_id)
    for slot, value in sets.items():
        if not _SLOT.match(str(slot)) or slot in LIST_SLOTS:
            raise RuleFileError(str(path), f"cannot set slot {slot!r}", rule=rule_id)
        if isinstance(value, dict | list):
            raise RuleFileError(str(path), f"slot {slot!r} takes a single value", rule=rule_id)
    for slot, values in adds.items():
        if slot not in LIST_SLOTS or not isinstance(values, list):
            raise RuleFileError(str(path), f"'add' takes a list for one of {sorted(LIST_SLOTS)}",
                                rule=rule_id)
    priority = raw.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise RuleFileError(str(path), "'priority' must be an integer", rule=rule_id)
    indicator = raw.get("indicator")
    if indicator is not None and indicator not in INDICATORS:
        raise RuleFileError(str(path), f"'indicator' must be one of {INDICATORS}", rule=rule_id)
    note, headline = raw.get("note"), raw.get("headline")
    if note is not None and not isinstance(note, str):
        raise RuleFileError(str(path), "'note' must be text", rule=rule_id)
    if headline is not None and (not isinstance(headline, str) or len(headline) >= 140):
        raise RuleFileError(str(path), "'headline' must be text under 140 characters",
                            rule=rule_id)
    if not (sets or adds or indicator or note):
        raise RuleFileError(str(path), "'then' concludes nothing", rule=rule_id)
    return Conclusion(sets, {k: tuple(v) for k, v in adds.items()}, priority, indicator, note,
                      headline)
