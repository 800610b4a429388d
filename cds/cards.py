"""Render the rules' conclusions as CDS Hooks cards.

The primary assessment card carries the machine-readable `b12cds.assessment` extension (a
contract: names and values are never renamed, only extended).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from string import Formatter
from typing import Any

from cds.engine import Evaluation, Firing
from cds.facts import Facts

EXTENSION = "b12cds.assessment"
PHASE_TITLES = {
    "repletion": "B12 repletion (loading)",
    "maintenance": "B12 maintenance",
    "not-indicated": "B12 injections not indicated",
    "insufficient-data": "Insufficient data for B12 dosing",
    "out-of-scope": "Outside this service's scope",
}
MAX_SUMMARY = 139


@dataclass(frozen=True)
class CardContext:
    """What the renderer needs besides the conclusions: the regimen profile and card ids."""

    regimen_name: str
    regimen: Mapping[str, Any]
    hook_instance: str
    uuid_seed: str | None = None

    def card_uuid(self, index: int) -> str:
        if self.uuid_seed:
            name = f"{self.uuid_seed}/{self.hook_instance}/{index}"
            return str(uuid.uuid5(uuid.NAMESPACE_URL, name))
        return str(uuid.uuid4())


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def note_text(firing: Firing) -> str | None:
    """The rule's note with the matched facts' fields filled in (later patterns win)."""
    template = firing.rule.then.note
    if not template:
        return None
    values: dict[str, Any] = _Blank()
    for fact in firing.facts:
        values.update(fact)
    return Formatter().vformat(template, (), values)


def render(evaluation: Evaluation, facts: Facts, ctx: CardContext) -> list[dict[str, Any]]:
    """The cards for one evaluation: always the primary assessment card."""
    slots = evaluation.slots
    phase = slots.get("phase", "insufficient-data")
    neurologic = bool(slots.get("neurologic", False))
    variant = ctx.regimen["variants"]["neuro" if neurologic else "standard"]
    contributors = list(evaluation.lists.get("contributors", ()))
    cause = slots.get("cause", "unknown")
    monitoring = _monitoring(evaluation, facts)
    evidence = list(dict.fromkeys(ref for f in evaluation.firings for ref in f.refs))
    assessment = {
        "phase": phase,
        "cause": cause,
        "contributors": contributors,
        "neurologic": neurologic,
        "trend": slots.get("trend", "unknown"),
        "evidence": evidence,
        "rules": evaluation.rule_ids,
        "monitoring": monitoring,
    }
    summary = _summary(phase, variant, facts, evaluation, contributors)
    card = {
        "uuid": ctx.card_uuid(0),
        "summary": summary,
        "indicator": evaluation.indicator,
        "detail": _detail(phase, cause, contributors, neurologic, assessment["trend"], variant,
                          evaluation, facts,
                          monitoring, ctx),
        "source": {"label": f"b12-cds: {ctx.regimen['label']}", "url": ctx.regimen["url"]},
        "extension": {EXTENSION: assessment},
    }
    return [card]


def _summary(phase: str, variant: Mapping[str, Any], facts: Facts, evaluation: Evaluation,
             contributors: list[str]) -> str:
    title = PHASE_TITLES[phase]
    if phase == "repletion":
        doses = len(facts.treatment.doses)
        required = variant.get("loading_doses")
        if doses and required:
            title += f", {doses} of {required} doses given, {max(required - doses, 0)} to go"
        elif doses:
            title += f", {doses} doses given"
        text = f"{title}: {variant['loading_short']}"
    elif phase == "maintenance":
        lifelong = " lifelong" if evaluation.slots.get("lifelong") else ""
        text = f"{title}: {variant['maintenance_short']}{lifelong}"
    elif phase == "insufficient-data":
        orders = evaluation.lists.get("orders", ())
        text = f"{title}: order {' or '.join(o['test'] for o in orders)}" if orders else title
    elif phase == "not-indicated":
        text = f"{title}: deficiency unlikely on current B12"
    else:
        text = f"{title}: no B12 regimen proposed"
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 3] + "..."


def _due(item: Mapping[str, Any], facts: Facts) -> date:
    start = facts.now
    if item.get("from") == "first-dose" and facts.treatment.doses:
        start = facts.treatment.doses[0].date
    return max(start + timedelta(days=int(item.get("due_days", 0))), facts.now)


def _monitoring(evaluation: Evaluation, facts: Facts) -> list[dict[str, Any]]:
    items = [
        {"test": m["test"], "loinc": m.get("loinc"), "due": _due(m, facts).isoformat(),
         "reason": m["reason"]}
        for m in evaluation.lists.get("monitoring", ())
    ]
    return sorted(items, key=lambda m: (m["due"], m["test"]))


def _detail(phase: str, cause: str, contributors: list[str], neurologic: bool, trend: str,
            variant: Mapping[str, Any], evaluation: Evaluation, facts: Facts,
            monitoring: list[dict[str, Any]], ctx: CardContext) -> str:
    lines = [
        f"**Phase:** {phase} | **Cause:** {cause}"
        + (f" | **Contributors:** {', '.join(contributors)}" if contributors else "")
        + f" | **Neurological involvement:** {'yes' if neurologic else 'none recorded'}"
        + f" | **Trend:** {trend}",
        "",
    ]
    if phase in {"repletion", "maintenance"}:
        lines += [
            f"**Regimen ({ctx.regimen_name} profile):** loading: {variant['loading']}; "
            f"maintenance: {variant['maintenance']}"
            + (" (lifelong)" if evaluation.slots.get("lifelong") else ""),
            "",
        ]
    alerts = dict.fromkeys(
        n for f in evaluation.firings if f.rule.then.indicator and (n := note_text(f)))
    notes = dict.fromkeys(
        n for f in evaluation.firings if not f.rule.then.indicator and (n := note_text(f)))
    for title, texts in (("Alerts", alerts), ("Evidence", notes)):
        if texts:
            lines.append(f"**{title}**")
            lines += [f"- {text}" for text in texts]
            lines.append("")
    orders = evaluation.lists.get("orders", ())
    if orders:
        lines.append("**Order**")
        lines += [f"- {o['test']} (LOINC {o['loinc']}): {o['reason']}" for o in orders]
        lines.append("")
    if monitoring:
        lines.append("**Monitoring**")
        lines += [
            f"- {m['due']}: {m['test']}" + (f" (LOINC {m['loinc']})" if m["loinc"] else "")
            + f" - {m['reason']}"
            for m in monitoring
        ]
        lines.append("")
    if facts.skipped:
        lines.append("**Not used**")
        lines += [f"- {s}" for s in facts.skipped]
        lines.append("")
    if facts.gaps:
        lines.append("**Missing data** (the assessment could not take it into account)")
        lines += [f"- {gap}" for gap in facts.gaps]
        lines.append("")
    sources = dict.fromkeys(f"{f.rule.id}: {f.rule.source}" for f in evaluation.firings)
    lines.append("**Sources:** " + "; ".join(sources) if sources else "**Sources:** none fired")
    return "\n".join(lines).strip()
