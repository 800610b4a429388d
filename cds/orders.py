"""Read draft B12 orders: product form, dose per injection, interval between injections.

Structured data first (RxNorm code, `doseAndRate`, `timing.repeat`), the order's text second, and
the card says which was used. The interval is compared with each regimen variant's loading and
maintenance intervals from `rules/regimens.yaml`; the rules decide what a mismatch means.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from cds.rulebook import Rulebook

#: length of each FHIR Timing `periodUnit` in days (a month counted as 30 days)
UNIT_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1, "wk": 7, "mo": 30, "a": 365}
_WORD_DAYS = {"day": 1, "week": 7, "month": 30}
#: schedule phrases, most specific first: (pattern, interval in days or None for "every N unit")
_TEXT_SCHEDULES: tuple[tuple[re.Pattern[str], float | None], ...] = (
    (re.compile(r"\bevery (\d+)\s*(?:-|to|\u2013)\s*\d+ (day|week|month)s?\b"), None),
    (re.compile(r"\bevery (\d+) (day|week|month)s?\b"), None),
    (re.compile(r"\b(?:every other day|alternate days?|qod)\b"), 2),
    (re.compile(r"\b(?:three times (?:a|per) week|3 ?x ?(?:/|a|per) ?w(?:ee)?k)\b"), 7 / 3),
    (re.compile(r"\b(?:once )?daily\b|\bevery day\b|\bonce a day\b|\bqd\b"), 1),
    (re.compile(r"\b(?:once )?weekly\b|\bevery week\b|\bonce a week\b"), 7),
    (re.compile(r"\b(?:once )?monthly\b|\bevery month\b|\bonce a month\b"), 30),
)
_TEXT_DOSE = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(mcg|micrograms?|µg|ug|mg|ml)\b")


@dataclass(frozen=True)
class DraftOrder:
    ref: str
    form: str | None  #: a `b12-form` value set id, or None when the product form is unknown
    dose_mcg: float | None
    interval_days: float | None
    schedule_source: str  #: structured | text | none
    written: str  #: the order as written, for the pharmacist
    raw: dict[str, Any]  #: the draft resource as sent, for the one-click update


def read(resource: Any, raw: dict[str, Any], rulebook: Rulebook, form: str | None) -> DraftOrder:
    """Read one validated draft MedicationRequest (`raw` is the JSON it was validated from)."""
    dosage = (resource.dosageInstruction or [None])[0]
    text = (getattr(dosage, "text", None) or "").lower()
    interval, source = _structured_interval(dosage), "structured"
    if interval is None:
        interval, source = _text_interval(text), "text"
        if interval is None:
            source = "none"
    ref = f"MedicationRequest/{resource.id}" if resource.id else "MedicationRequest (no id)"
    dose = _dose(dosage, text, rulebook, form)
    return DraftOrder(ref, form, dose, interval, source,
                      _written(resource, dosage, dose, interval), raw)


def compare(order: DraftOrder, variant: dict[str, Any]) -> tuple[str | None, str | None]:
    """(loading, maintenance) comparison of the order's interval with one regimen variant."""
    if order.interval_days is None:
        return None, None
    loading = "slower" if order.interval_days > variant["loading_max_interval_days"] else "within"
    low, high = variant["maintenance_interval_days"]
    maintenance = ("faster" if order.interval_days < low
                   else "slower" if order.interval_days > high else "within")
    return loading, maintenance


def _structured_interval(dosage: Any) -> float | None:
    repeat = getattr(getattr(dosage, "timing", None), "repeat", None)
    if repeat is None or repeat.period is None or repeat.periodUnit not in UNIT_DAYS:
        return None
    frequency = repeat.frequency or 1
    return _number(float(repeat.period) * UNIT_DAYS[repeat.periodUnit] / frequency)


def _text_interval(text: str) -> float | None:
    for pattern, days in _TEXT_SCHEDULES:
        match = pattern.search(text)
        if match:
            if days is not None:
                return _number(days)
            return _number(float(match.group(1)) * _WORD_DAYS[match.group(2)])
    return None


def _dose(dosage: Any, text: str, rulebook: Rulebook, form: str | None) -> float | None:
    quantity = None
    for dose_rate in getattr(dosage, "doseAndRate", None) or []:
        quantity = dose_rate.doseQuantity or quantity
    if quantity is not None and quantity.value is not None:
        return _to_mcg(float(quantity.value), quantity.code or quantity.unit, rulebook, form)
    match = _TEXT_DOSE.search(text)
    if not match:
        return None
    return _to_mcg(float(match.group(1).replace(",", "")), match.group(2), rulebook, form)


def _to_mcg(value: float, unit: str | None, rulebook: Rulebook, form: str | None) -> float | None:
    mcg = rulebook.units["b12-dose"].to_canonical(value, unit)
    if mcg is None and form == "b12-injection":
        mcg = rulebook.units["b12-dose-volume"].to_canonical(value, unit)
    return None if mcg is None else _number(mcg)


def _number(value: float) -> float | int | None:
    """Rounded to 3 places, whole numbers as int (30 days reads 30, not 30.0); None for what
    cannot be a dose or an interval (zero, negative, not finite)."""
    value = float(value)
    if not math.isfinite(value) or value <= 0 or value > 1e6:
        return None
    value = round(value, 3)
    if value == 0:
        return None
    return int(value) if value.is_integer() else value


def _written(resource: Any, dosage: Any, dose: float | None, interval: float | None) -> str:
    concept = resource.medicationCodeableConcept or SimpleNamespace(
        text=getattr(resource.medicationReference, "display", None), coding=None)
    product = (getattr(concept, "text", None)
               or next((c.display for c in (getattr(concept, "coding", None) or []) if c.display),
                       "B12 product"))
    how = getattr(dosage, "text", None)
    if not how:
        amount = f"{dose:g} mcg" if dose is not None else "dose not stated"
        every = f"every {interval:g} days" if interval is not None else "schedule not stated"
        how = f"{amount}, {every}"
    return f"{product}: {how}"
