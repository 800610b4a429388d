"""Turn validated FHIR resources into clinical facts: frozen dataclasses, units normalised.

Codes are mapped to concepts through the value sets in `rules/valuesets/`; lab values are converted
to each test's canonical unit with `rules/units.yaml`. Anything that cannot be read safely (unknown
unit, no value, no date, unusable status) is skipped and the reason kept, so cards can say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from cds import orders
from cds.fhir import PatientRecord
from cds.orders import DraftOrder
from cds.rulebook import Rulebook

LAB_STATUSES = {"final", "amended", "corrected"}
INACTIVE_CONDITION = {"inactive", "resolved", "remission"}
EXCLUDED_VERIFICATION = {"refuted", "entered-in-error"}
DONE_ADMINISTRATION = {"completed", "in-progress"}
COMPARATORS = {None: "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True)
class LabResult:
    test: str
    value: float | None  #: None for a qualitative result (read by its interpretation)
    unit: str
    comparator: str
    date: date
    age_days: int
    current: bool
    latest: bool
    ref: str
    value_text: str
    ref_low: float | None = None
    ref_high: float | None = None
    range_flag: str | None = None
    interpretation: str | None = None


@dataclass(frozen=True)
class Coded:
    """A condition, procedure or (non-B12) medication mapped to a value-set concept."""

    kind: str
    concept: str
    ref: str
    display: str
    date: date | None = None


@dataclass(frozen=True)
class Dose:
    date: date
    ref: str


@dataclass(frozen=True)
class Treatment:
    doses: tuple[Dose, ...]
    prior_course: bool
    active_order: bool
    refs: tuple[str, ...]


@dataclass(frozen=True)
class Loading:
    """Progress through one regimen variant's loading course."""

    variant: str
    required: int | None
    given: int

    @property
    def remaining(self) -> int | None:
        return None if self.required is None else max(self.required - self.given, 0)


@dataclass(frozen=True)
class Series:
    """Two points of one test's current results: the baseline and the latest.

    The baseline is the last result on or before the first recorded injection (the start of
    treatment) when there is one, otherwise the earliest current result.
    """

    test: str
    count: int
    baseline: LabResult
    latest: LabResult
    since_treatment: bool

    @property
    def change_pct(self) -> float:
        return round((self.latest.value - self.baseline.value) / self.baseline.value * 100, 2)


@dataclass(frozen=True)
class Demographics:
    age_years: int | None
    sex: str


@dataclass(frozen=True)
class Facts:
    now: date
    demographics: Demographics
    labs: tuple[LabResult, ...]
    coded: tuple[Coded, ...]
    treatment: Treatment
    loading: tuple[Loading, ...]
    series: tuple[Series, ...]
    orders: tuple[DraftOrder, ...]
    regimen: Mapping[str, Any]
    skipped: tuple[str, ...]
    gaps: tuple[str, ...]

    def engine_facts(self) -> list[dict[str, Any]]:
        """The facts as flat dicts for the rule engine (fields per `rulebook.FACT_FIELDS`)."""
        facts: list[dict[str, Any]] = [
            {"type": "patient", "age_years": self.demographics.age_years,
             "sex": self.demographics.sex}
        ]
        for lab in self.labs:
            fact = {"type": "lab", **lab.__dict__, "date": lab.date.isoformat()}
            facts.append(fact)
        for s in self.series:
            facts.append({
                "type": "series", "test": s.test, "count": s.count,
                "baseline": round(s.baseline.value, 1), "latest": round(s.latest.value, 1),
                "baseline_date": s.baseline.date.isoformat(),
                "latest_date": s.latest.date.isoformat(), "change_pct": s.change_pct,
                "since_treatment": s.since_treatment, "ref": s.latest.ref,
            })
        for order in self.orders:
            fact = {"type": "order", "ref": order.ref, "form": order.form or "unknown",
                    "dose_mcg": order.dose_mcg, "interval_days": order.interval_days,
                    "schedule_source": order.schedule_source}
            for name, variant in self.regimen["variants"].items():
                fact[f"loading_{name}"], fact[f"maintenance_{name}"] = orders.compare(order,
                                                                                      variant)
            facts.append(fact)
        start = self.treatment.doses[0].date if self.treatment.doses else None
        for item in self.coded:
            facts.append({"type": item.kind, "concept": item.concept, "ref": item.ref,
                          "display": item.display,
                          "date": item.date.isoformat() if item.date else None,
                          "since_treatment": bool(item.date and start and item.date > start)})
        t = self.treatment
        facts.append({
            "type": "treatment",
            "doses": len(t.doses),
            "first_dose": t.doses[0].date.isoformat() if t.doses else None,
            "last_dose": t.doses[-1].date.isoformat() if t.doses else None,
            "days_since_last": (self.now - t.doses[-1].date).days if t.doses else None,
            "prior_course": t.prior_course,
            "active_order": t.active_order,
        })
        for loading in self.loading:
            facts.append({
                "type": "loading", "variant": loading.variant, "given": loading.given,
                "required": loading.required, "remaining": loading.remaining,
                "complete": None if loading.required is None else loading.remaining == 0,
                "open_ended": loading.required is None,
            })
        return facts


def medication(resource: Any) -> Any:
    """The medication concept of a MedicationRequest/Statement/Administration; a reference
    (`medicationReference`) is read by its display text, as the selection step did."""
    if resource.medicationCodeableConcept is not None:
        return resource.medicationCodeableConcept
    display = getattr(resource.medicationReference, "display", None)
    return SimpleNamespace(text=display, coding=None) if display else None


def _to_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        # an instant with a zone is dated in UTC, as `now` is: no lab "from the future"
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 4:  # partial FHIR dates: 2020, 2020-05
        parts = [*value.split("T")[0].split("-"), "01", "01"][:3]
        try:
            return date(int(parts[0]), int(parts[1]), int(parts[2]))
        except ValueError:
            return None
    return None


def _effective(resource: Any) -> date | None:
    """The date of `effective[x]` (dateTime, or a Period's start)."""
    return _to_date(resource.effectiveDateTime
                    or getattr(resource.effectivePeriod, "start", None))


def _interpretation(obs: Any) -> str | None:
    """The first code of the Observation's first interpretation (H, L, POS, ...)."""
    if not obs.interpretation:
        return None
    return next(iter(_codings(obs.interpretation[0])), (None, None))[1]


def _codings(concept: Any) -> list[tuple[str | None, str | None]]:
    return [(c.system, c.code) for c in (getattr(concept, "coding", None) or [])]


def _text(concept: Any) -> str:
    if concept is None:
        return ""
    parts = [getattr(concept, "text", None)]
    parts += [c.display for c in (getattr(concept, "coding", None) or [])]
    return " ".join(p for p in parts if p)


def _ref(resource: Any) -> str:
    return f"{resource.get_resource_type()}/{resource.id or '?'}"


def _number(value: Decimal | float | int) -> float:
    return float(value)


def _fmt(value: float) -> str:
    return f"{value:g}"


def build(record: PatientRecord, rulebook: Rulebook, now: date, regimen_profile: str) -> Facts:
    """Build the clinical facts of one request, as of `now`."""
    skipped: list[str] = []
    window = int(rulebook.parameters["current_window_days"]["value"])
    labs = _labs(record, rulebook, now, window, skipped)
    coded = _coded(record, rulebook, skipped)
    profile = rulebook.regimens[regimen_profile]
    lapse = max(v["maintenance_interval_days"][1] for v in profile["variants"].values())
    treatment = _treatment(record, rulebook, skipped, now, lapse)
    loading = tuple(
        Loading(name, variant.get("loading_doses"), len(treatment.doses))
        for name, variant in profile["variants"].items()
    )
    series = _series(labs, treatment, rulebook.parameters["trend_tests"]["value"])
    drafts = tuple(
        orders.read(model, dict(raw), rulebook, b12_form(medication(model),
                                                         rulebook, _dosage_route(model)))
        for model, raw in record.draft_orders
        if _is_b12(medication(model), rulebook)
    )
    return Facts(now, _demographics(record, now, skipped), labs, coded, treatment, loading,
                 series, drafts, profile, tuple(skipped), record.gaps)


def _dosage_route(request: Any) -> str:
    dosage = (request.dosageInstruction or [None])[0]
    return " ".join(filter(None, [_text(getattr(dosage, "route", None)),
                                  getattr(dosage, "text", None)]))


def _series(labs: tuple[LabResult, ...], treatment: Treatment,
            tests: list[str]) -> tuple[Series, ...]:
    """Baseline and latest of each trended test, from current uncensored results."""
    start = treatment.doses[0].date if treatment.doses else None
    out = []
    for test in tests:
        points = sorted((lab for lab in labs if lab.test == test and lab.current
                         and lab.comparator == "=" and lab.value > 0),
                        key=lambda r: (r.date, r.ref))
        if len(points) < 2:
            continue
        before = [p for p in points if start is not None and p.date <= start]
        baseline = before[-1] if before else points[0]
        latest = points[-1]
        if latest is baseline:
            continue
        out.append(Series(test, len(points), baseline, latest, bool(before)))
    return tuple(out)


def _demographics(record: PatientRecord, now: date, skipped: list[str]) -> Demographics:
    patient = record.patient
    if patient is None:
        skipped.append("Patient: not provided; age and sex unknown")
        return Demographics(None, "unknown")
    birth = _to_date(patient.birthDate)
    age = None
    if birth is None:
        skipped.append(f"Patient/{patient.id}: no birth date; age unknown")
    else:
        age = now.year - birth.year - ((now.month, now.day) < (birth.month, birth.day))
    return Demographics(age, patient.gender or "unknown")


def _labs(
    record: PatientRecord, rulebook: Rulebook, now: date, window: int, skipped: list[str]
) -> tuple[LabResult, ...]:
    results: list[LabResult] = []
    for obs in record.of("Observation"):
        ref = _ref(obs)
        test = next((vs.id for vs in rulebook.coded(("lab",), _codings(obs.code))), None)
        if test is None:
            continue
        when = _effective(obs) or _to_date(obs.issued)
        if test not in rulebook.units:  # a qualitative test (e.g. an antibody): no unit table
            result = _qualitative(obs, test, when, now, window, ref)
            if result is None:
                skipped.append(f"{ref} ({test}): ignored, no date, or neither an "
                               "interpretation nor a result to read")
            else:
                results.append(result)
            continue
        reason = _unusable_lab(obs, rulebook, test)
        if reason is None and when is None:
            reason = "no effective date"
        if reason is None and when > now:
            reason = f"dated in the future ({when.isoformat()})"
        if reason:
            skipped.append(f"{ref} ({test}): ignored, {reason}")
            continue
        q = obs.valueQuantity
        table = rulebook.units[test]
        value = next(v for u in (q.code, q.unit)
                     if (v := table.to_canonical(_number(q.value), u)) is not None)
        comparator = COMPARATORS[q.comparator]
        low, high = _reference_range(obs, table)
        age = (now - when).days
        interpretation = _interpretation(obs)
        sign = "" if comparator == "=" else comparator
        shown = f"{sign}{_fmt(_number(q.value))} {q.unit or q.code}"
        results.append(LabResult(
            test=test, value=round(value, 4), unit=table.canonical, comparator=comparator,
            date=when, age_days=age, current=age <= window, latest=False, ref=ref,
            value_text=shown, ref_low=low, ref_high=high, range_flag=_range_flag(value, low, high),
            interpretation=interpretation,
        ))
    newest: dict[str, LabResult] = {}
    for lab in sorted(results, key=lambda r: (r.date, r.ref)):
        newest[lab.test] = lab
    latest = {id(lab) for lab in newest.values()}
    marked = [
        LabResult(**{**lab.__dict__, "latest": id(lab) in latest}) for lab in results
    ]
    return tuple(sorted(marked, key=lambda r: (r.test, r.date, r.ref), reverse=True))


def _qualitative(obs: Any, test: str, when: date | None, now: date, window: int,
                 ref: str) -> LabResult | None:
    """A result read by its interpretation code and the laboratory's own range (same unit)."""
    if obs.status not in LAB_STATUSES or when is None or when > now:
        return None
    interpretation = _interpretation(obs)
    q, flag = obs.valueQuantity, None
    if q is not None and q.value is not None and obs.referenceRange:
        rr = obs.referenceRange[0]
        same = [b for b in (rr.low, rr.high) if b is not None and b.value is not None
                and (b.code or b.unit) == (q.code or q.unit)]
        if same:
            flag = _range_flag(float(q.value), *(
                float(b.value) if b is not None and b in same else None
                for b in (rr.low, rr.high)))
    shown = (obs.valueString or _text(obs.valueCodeableConcept)
             or (f"{_fmt(float(q.value))} {q.unit or q.code or ''}".strip() if q and q.value
                 is not None else ""))
    if not (interpretation or flag or shown):
        return None
    age = (now - when).days
    return LabResult(test=test, value=None, unit="", comparator="=", date=when, age_days=age,
                     current=age <= window, latest=False, ref=ref,
                     value_text=shown or f"interpretation {interpretation}", range_flag=flag,
                     interpretation=interpretation)


def _range_flag(value: float, low: float | None, high: float | None) -> str | None:
    """Where the value sits against the reporting laboratory's own reference range."""
    if high is not None and value > high:
        return "high"
    if low is not None and value < low:
        return "low"
    return "normal" if (low is not None or high is not None) else None


def _unusable_lab(obs: Any, rulebook: Rulebook, test: str) -> str | None:
    if obs.status not in LAB_STATUSES:
        return f"status '{obs.status}'"
    q = obs.valueQuantity
    if q is None or q.value is None:
        return "no numeric valueQuantity"
    if not math.isfinite(float(q.value)):
        return f"value {q.value:.3e} is not a finite number"
    table = rulebook.units.get(test)
    if table is None:
        return "no unit table for this test"
    if all(table.to_canonical(1.0, u) is None for u in (q.code, q.unit)):
        return f"unit '{q.unit or q.code}' not recognised (expected one of {sorted(table.factors)})"
    return None


def _reference_range(obs: Any, table: Any) -> tuple[float | None, float | None]:
    if not obs.referenceRange:
        return None, None
    rr = obs.referenceRange[0]

    def convert(q: Any) -> float | None:
        if q is None or q.value is None:
            return None
        value = table.to_canonical(_number(q.value), q.code or q.unit)
        return None if value is None or not math.isfinite(value) else round(value, 4)

    return convert(rr.low), convert(rr.high)


def _coded(record: PatientRecord, rulebook: Rulebook, skipped: list[str]) -> tuple[Coded, ...]:
    items: list[Coded] = []
    for cond in record.of("Condition"):
        status = _codings(cond.clinicalStatus)
        verification = _codings(cond.verificationStatus)
        if any(code in INACTIVE_CONDITION for _, code in status) or any(
            code in EXCLUDED_VERIFICATION for _, code in verification
        ):
            skipped.append(f"{_ref(cond)}: not counted, condition is not active or was refuted")
            continue
        onset = _to_date(cond.onsetDateTime or cond.recordedDate)
        items += _concepts("condition", cond, cond.code, rulebook, onset)
    for obs in record.of("Observation"):  # a finding recorded as a coded Observation
        if obs.status in LAB_STATUSES and obs.valueBoolean is not False:
            when = _effective(obs)
            items += _concepts("condition", obs, obs.code, rulebook, when)
    for proc in record.of("Procedure"):
        if proc.status in {"entered-in-error", "not-done"}:
            continue
        when = _to_date(proc.performedDateTime or getattr(proc.performedPeriod, "start", None))
        items += _concepts("procedure", proc, proc.code, rulebook, when)
    for kind in ("MedicationStatement", "MedicationRequest"):
        for med in record.of(kind):
            if med.status not in rulebook.parameters["medication_statuses_counted"]["value"]:
                continue
            concept = medication(med)
            items += _concepts("medication", med, concept, rulebook, None)
    return tuple(items)


def _concepts(kind: str, resource: Any, concept: Any, rulebook: Rulebook,
              when: date | None) -> list[Coded]:
    codings, text = _codings(concept), _text(concept)
    return [
        Coded(kind, vs.id, _ref(resource), text or vs.description, when)
        for vs in rulebook.valuesets_of(kind)
        if vs.matches_code(codings) or (kind == "medication" and text and vs.matches_text(text))
    ]


def b12_form(concept: Any, rulebook: Rulebook, extra_text: str = "") -> str | None:
    """The form of a B12 product (a `b12-form` value-set id), by code first, then by text."""
    codings = _codings(concept)
    forms = rulebook.valuesets_of("b12-form")
    for vs in forms:
        if vs.matches_code(codings):
            return vs.id
    text = f"{_text(concept)} {extra_text}".strip()
    return next((vs.id for vs in forms if text and vs.matches_text(text)), None)


def _is_b12(concept: Any, rulebook: Rulebook) -> bool:
    vs = rulebook.valuesets["vitamin-b12"]
    return vs.matches_code(_codings(concept)) or vs.matches_text(_text(concept))


def _treatment(record: PatientRecord, rulebook: Rulebook, skipped: list[str], now: date,
               lapse_days: int) -> Treatment:
    doses: list[Dose] = []
    refs: list[str] = []
    for admin in record.of("MedicationAdministration"):
        concept = medication(admin)
        if not _is_b12(concept, rulebook) or admin.status not in DONE_ADMINISTRATION:
            continue
        route = _text(getattr(admin.dosage, "route", None))
        form = b12_form(concept, rulebook, route)
        when = _effective(admin)
        if form != "b12-injection" or when is None:
            why = "not an injection" if form else "product form not stated"
            skipped.append(f"{_ref(admin)}: B12 administration not counted as a dose ({why})"
                           if when else f"{_ref(admin)}: B12 administration has no date")
            continue
        doses.append(Dose(when, _ref(admin)))
        refs.append(_ref(admin))
    prior_course = False
    for stmt in record.of("MedicationStatement"):
        concept = medication(stmt)
        established = rulebook.parameters["established_course_statuses"]["value"]
        if stmt.status in established and _is_b12(concept, rulebook) and (
            b12_form(concept, rulebook) == "b12-injection"
        ):
            prior_course = True
            refs.append(_ref(stmt))
    active_order = any(
        req.status == "active" and req.intent in {"order", "original-order", "plan"}
        and _is_b12(medication(req), rulebook)
        for req in record.of("MedicationRequest")
    )
    doses.sort(key=lambda d: (d.date, d.ref))
    course = _current_course(doses, now, lapse_days)
    if len(course) < len(doses):
        earlier = doses[: len(doses) - len(course)]
        skipped.append(
            f"{len(earlier)} earlier B12 injection(s), the last on {earlier[-1].date.isoformat()}: "
            f"a gap of more than {lapse_days} days (the longest maintenance interval) ended that "
            "course, so they are not counted towards the current one")
    return Treatment(tuple(course), prior_course, active_order, tuple(refs))


def _current_course(doses: list[Dose], now: date, lapse_days: int) -> list[Dose]:
    """The trailing run of injections with no gap longer than `lapse_days`, up to today."""
    if not doses or (now - doses[-1].date).days > lapse_days:
        return []
    start = len(doses) - 1
    while start > 0 and (doses[start].date - doses[start - 1].date).days <= lapse_days:
        start -= 1
    return doses[start:]
