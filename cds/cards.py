"""Render the rules' conclusions as CDS Hooks cards.

Every call gets the primary assessment card, whose `b12cds.assessment` extension is a contract
(names and values are never renamed, only extended). Each draft B12 order gets an order card with
the check, the one-click suggestions, and (on order-sign) a verification summary for pharmacists.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from string import Formatter
from typing import Any

from cds import suggestions
from cds.engine import Evaluation, Firing
from cds.facts import Facts
from cds.orders import DraftOrder
from cds.rulebook import INDICATORS

EXTENSION = "b12cds.assessment"
ORDER_EXTENSION = "b12cds.order"
ORDER_STRATUM = "orders"
PHASE_TITLES = {
    "repletion": "B12 repletion (loading)",
    "maintenance": "B12 maintenance",
    "not-indicated": "B12 injections not indicated",
    "insufficient-data": "Insufficient data for B12 dosing",
    "out-of-scope": "Outside this service's scope",
}
SCHEDULE_SOURCES = {"structured": "structured timing", "text": "the order's text only",
                    "none": "nothing: no structured timing and no recognisable text"}
MAX_SUMMARY = 139


@dataclass(frozen=True)
class CardContext:
    """What the renderer needs besides the conclusions."""

    regimen_name: str
    regimen: Mapping[str, Any]
    hook_instance: str
    uuid_seed: str | None = None
    hook: str = "patient-view"
    patient_id: str = ""

    def card_uuid(self, index: int) -> str:
        if self.uuid_seed:
            name = f"{self.uuid_seed}/{self.hook_instance}/{index}"
            return str(uuid.uuid5(uuid.NAMESPACE_URL, name))
        return str(uuid.uuid4())


@dataclass(frozen=True)
class _View:
    """The values every card derives from one evaluation."""

    evaluation: Evaluation
    facts: Facts
    ctx: CardContext

    @property
    def slots(self) -> Mapping[str, Any]:
        return self.evaluation.slots

    @property
    def phase(self) -> str:
        return self.slots.get("phase", "insufficient-data")

    @property
    def neurologic(self) -> bool:
        return bool(self.slots.get("neurologic", False))

    @property
    def variant(self) -> Mapping[str, Any]:
        return self.ctx.regimen["variants"]["neuro" if self.neurologic else "standard"]

    @property
    def contributors(self) -> list[str]:
        return list(self.evaluation.lists.get("contributors", ()))

    @property
    def lifelong(self) -> str:
        return " (lifelong)" if self.slots.get("lifelong") else ""

    def monitoring(self) -> list[dict[str, Any]]:
        items = [
            {"test": m["test"], "loinc": m.get("loinc"), "due": self._due(m).isoformat(),
             "reason": m["reason"]}
            for m in self.evaluation.lists.get("monitoring", ())
        ]
        return sorted(items, key=lambda m: (m["due"], m["test"]))

    def _due(self, item: Mapping[str, Any]) -> date:
        now, doses = self.facts.now, self.facts.treatment.doses
        start = doses[0].date if item.get("from") == "first-dose" and doses else now
        return max(start + timedelta(days=int(item.get("due_days", 0))), now)


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def note_text(firing: Firing, template: str | None = None) -> str | None:
    """A rule's note (or `template`) with the matched facts' fields filled in."""
    template = template or firing.rule.then.note
    if not template:
        return None
    values: dict[str, Any] = _Blank()
    for fact in firing.facts:
        values.update({k: f"{v:g}" if isinstance(v, float) else v for k, v in fact.items()})
    return Formatter().vformat(template, (), values)


def _indicator(firings: list[Firing]) -> str:
    return max((f.rule.then.indicator for f in firings if f.rule.then.indicator),
               key=INDICATORS.index, default="info")


def _clip(text: str) -> str:
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 3] + "..."


def render(evaluation: Evaluation, facts: Facts, ctx: CardContext) -> list[dict[str, Any]]:
    """The assessment card, then one card per draft B12 order."""
    view = _View(evaluation, facts, ctx)
    clinical = [f for f in evaluation.firings if f.rule.stratum != ORDER_STRATUM]
    cards = [_assessment_card(view, clinical)]
    for order in facts.orders:
        mine = [f for f in evaluation.firings if f.rule.stratum == ORDER_STRATUM
                and any(fact.get("ref") == order.ref for fact in f.facts)]
        cards.append(_order_card(view, order, mine, ctx.card_uuid(len(cards))))
    return cards


def _assessment_card(view: _View, firings: list[Firing]) -> dict[str, Any]:
    slots, monitoring = view.slots, view.monitoring()
    assessment = {
        "phase": view.phase,
        "cause": slots.get("cause", "unknown"),
        "contributors": view.contributors,
        "neurologic": view.neurologic,
        "trend": slots.get("trend", "unknown"),
        "evidence": list(dict.fromkeys(ref for f in firings for ref in f.refs)),
        "rules": list(dict.fromkeys(f.rule.id for f in firings)),
        "monitoring": monitoring,
    }
    return {
        "uuid": view.ctx.card_uuid(0),
        "summary": _summary(view),
        "indicator": _indicator(firings),
        "detail": _detail(view, assessment, firings, monitoring),
        "source": _source(view),
        "extension": {EXTENSION: assessment},
    }


def _summary(view: _View) -> str:
    phase, variant = view.phase, view.variant
    title = PHASE_TITLES[phase]
    if phase == "repletion":
        doses = len(view.facts.treatment.doses)
        required = variant.get("loading_doses")
        if doses and required:
            title += f", {doses} of {required} doses given, {max(required - doses, 0)} to go"
        elif doses:
            title += f", {doses} doses given"
        return _clip(f"{title}: {variant['loading_short']}")
    if phase == "maintenance":
        lifelong = " lifelong" if view.slots.get("lifelong") else ""
        return _clip(f"{title}: {variant['maintenance_short']}{lifelong}")
    if phase == "insufficient-data":
        tests = view.evaluation.lists.get("lab_orders", ())
        return _clip(f"{title}: order {' or '.join(t['test'] for t in tests)}" if tests else title)
    if phase == "not-indicated":
        return f"{title}: deficiency unlikely on current B12"
    return f"{title}: no B12 regimen proposed"


def _regimen_line(view: _View) -> str:
    variant = view.variant
    return (f"loading: {variant['loading']}; maintenance: {variant['maintenance']}"
            f"{view.lifelong}")


def _bullets(heading: str, items: list[str] | dict[str, None]) -> list[str]:
    """A Markdown heading line and its bullet list, or nothing when there are no items."""
    return [heading, *(f"- {item}" for item in items), ""] if items else []


def _detail(view: _View, assessment: Mapping[str, Any], firings: list[Firing],
            monitoring: list[dict[str, Any]]) -> str:
    contributors = assessment["contributors"]
    lines = [
        f"**Phase:** {view.phase} | **Cause:** {assessment['cause']}"
        + (f" | **Contributors:** {', '.join(contributors)}" if contributors else "")
        + f" | **Neurological involvement:** {'yes' if view.neurologic else 'none recorded'}"
        + f" | **Trend:** {assessment['trend']}",
        "",
    ]
    if view.phase in {"repletion", "maintenance"}:
        lines += [f"**Regimen ({view.ctx.regimen_name} profile):** {_regimen_line(view)}", ""]
    lines += _bullets("**Alerts**", _notes(firings, alerts=True))
    lines += _bullets("**Evidence**", _notes(firings, alerts=False))
    lines += _bullets("**Order**", [f"{t['test']} (LOINC {t['loinc']}): {t['reason']}"
                                    for t in view.evaluation.lists.get("lab_orders", ())])
    lines += _bullets("**Monitoring**", [_monitoring_line(m) for m in monitoring])
    lines += _bullets("**Not used**", list(view.facts.skipped))
    lines += _bullets("**Missing data** (the assessment could not take it into account)",
                      list(view.facts.gaps))
    lines.append(_sources(firings))
    return "\n".join(lines).strip()


def _notes(firings: list[Firing], *, alerts: bool) -> dict[str, None]:
    return dict.fromkeys(n for f in firings
                         if bool(f.rule.then.indicator) == alerts and (n := note_text(f)))


def _monitoring_line(m: Mapping[str, Any]) -> str:
    code = f" (LOINC {m['loinc']})" if m["loinc"] else ""
    return f"{m['due']}: {m['test']}{code} - {m['reason']}"


def _source(view: _View) -> dict[str, str]:
    return {"label": f"b12-cds: {view.ctx.regimen['label']}", "url": view.ctx.regimen["url"]}


def _sources(firings: list[Firing]) -> str:
    sources = dict.fromkeys(f"{f.rule.id}: {f.rule.source}" for f in firings)
    return "**Sources:** " + ("; ".join(sources) if sources else "none fired")


def _order_card(view: _View, order: DraftOrder, firings: list[Firing],
                card_uuid: str) -> dict[str, Any]:
    headline = next(
        (note_text(f, f.rule.then.headline) for f in sorted(
            (f for f in firings if f.rule.then.headline),
            key=lambda f: -INDICATORS.index(f.rule.then.indicator or "info"))),
        f"B12 order reviewed: {order.written}",
    )
    monitoring = view.monitoring()
    steps = suggestions.remaining_steps(view.variant, view.phase,
                                        len(view.facts.treatment.doses))
    dosage = suggestions.dosage_instructions(steps, view.variant["dose_mcg"],
                                             view.ctx.regimen["route"])
    offers = []
    if any("recommended-schedule" in f.rule.then.add.get("suggestions", ()) for f in firings) \
            and view.phase in {"repletion", "maintenance"} and order.form == "b12-injection":
        offers.append(suggestions.update_order(order, dosage, card_uuid))
    if view.phase in {"repletion", "maintenance"}:
        offers.append(suggestions.monitoring_requests(monitoring, view.ctx.patient_id,
                                                      card_uuid))
    offers = [o for o in offers if o]
    card: dict[str, Any] = {
        "uuid": card_uuid,
        "summary": _clip(headline),
        "indicator": _indicator(firings),
        "detail": _order_detail(view, order, firings, steps, monitoring),
        "source": _source(view),
        "overrideReasons": suggestions.OVERRIDE_REASONS,
        "extension": {ORDER_EXTENSION: {
            "order": order.ref,
            "verdict": view.slots.get("order_verdict", "unchecked"),
            "phase": view.phase,
            "dose_mcg": order.dose_mcg,
            "interval_days": order.interval_days,
            "schedule_source": order.schedule_source,
            "rules": list(dict.fromkeys(f.rule.id for f in firings)),
        }},
    }
    if offers:
        card["suggestions"] = offers
        card["selectionBehavior"] = "any"
    return card


def _order_detail(view: _View, order: DraftOrder, firings: list[Firing], steps: list[dict],
                  monitoring: list[dict[str, Any]]) -> str:
    recommended = "; ".join(s["text"] for s in steps) if view.phase in {
        "repletion", "maintenance"} else "no B12 injection schedule (see the assessment card)"
    clinical = [f for f in view.evaluation.firings if f.rule.stratum != ORDER_STRATUM]
    safety = list(_notes(clinical, alerts=True)) or ["none"]
    cause = view.slots.get("cause", "unknown")
    contributors = ", ".join(view.contributors) or "none recorded"
    lines = []
    if view.ctx.hook == "order-sign":
        lines += [
            "**Pharmacist verification**",
            f"- Indication: phase {view.phase}; cause {cause} (contributors: {contributors}); "
            f"neurological involvement {'yes' if view.neurologic else 'none recorded'}",
            f"- Order as written: {order.written} (schedule read from "
            f"{SCHEDULE_SOURCES[order.schedule_source]})",
            f"- Recommended: {recommended}{view.lifelong}",
            "- Monitoring due: " + ("; ".join(f"{m['due']} {m['test']}" for m in monitoring)
                                    or "none"),
            "- Safety: " + " ".join(safety),
            "",
        ]
    else:
        lines += [f"**Order as written:** {order.written} (schedule read from "
                  f"{SCHEDULE_SOURCES[order.schedule_source]})", "",
                  f"**Recommended:** {recommended}{view.lifelong}", ""]
    # alerts first, then the other notes
    lines += _bullets("**Check**", _notes(firings, alerts=True) | _notes(firings, alerts=False))
    lines.append(_sources(firings))
    return "\n".join(lines).strip()
