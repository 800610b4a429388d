"""CDS Hooks suggestions for a draft B12 order: the recommended schedule as an `update` of the
draft MedicationRequest, and the monitoring tests as `create` ServiceRequests."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from cds.orders import DraftOrder

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
TIMING_KEYS = ("frequency", "period", "periodMax", "periodUnit", "count")
OVERRIDE_SYSTEM = "urn:b12-cds:override-reason"
OVERRIDE_REASONS = [
    {"system": OVERRIDE_SYSTEM, "code": "patient-preference", "display": "Patient preference"},
    {"system": OVERRIDE_SYSTEM, "code": "specialist-advice", "display": "Specialist advice"},
    {"system": OVERRIDE_SYSTEM, "code": "dose-given-elsewhere", "display": "Dose given elsewhere"},
    {"system": OVERRIDE_SYSTEM, "code": "other", "display": "Other"},
]


def remaining_steps(variant: Mapping[str, Any], phase: str, doses_given: int) -> list[dict]:
    """The regimen steps still to come: in repletion, loading steps less the doses already given
    (then maintenance); in maintenance, the maintenance steps only."""
    steps = []
    given = doses_given if phase == "repletion" else 0
    for step in variant["steps"]:
        if step["phase"] == "loading" and phase != "repletion":
            continue
        step = dict(step)
        if step["phase"] == "loading" and step.get("count") and given:
            used = min(given, step["count"])
            given -= used
            step["count"] -= used
            if step["count"] == 0:
                continue
            step["text"] = f"{step['text'].split(' for ')[0]} for {step['count']} more injection(s)"
        steps.append(step)
    return steps


def dosage_instructions(steps: list[dict], dose_mcg: float, route: str) -> list[dict]:
    """Sequenced FHIR Dosage elements for `steps`, the dose as a UCUM quantity."""
    return [
        {
            "sequence": n,
            "text": step["text"],
            "timing": {"repeat": {k: step[k] for k in TIMING_KEYS if step.get(k) is not None}},
            "route": {"text": route},
            "doseAndRate": [{"doseQuantity": {"value": dose_mcg, "unit": "mcg", "system": UCUM,
                                              "code": "ug"}}],
        }
        for n, step in enumerate(steps, start=1)
    ]


def update_order(order: DraftOrder, dosage: list[dict], card_uuid: str) -> dict | None:
    """Suggestion: the same draft with the recommended dosage; None when it has no id to update."""
    if not order.raw.get("id"):
        return None
    resource = copy.deepcopy(order.raw)
    resource["dosageInstruction"] = dosage
    return {
        "label": "Use the recommended schedule",
        "uuid": str(uuid.uuid5(uuid.UUID(card_uuid), "update-order")),
        "isRecommended": True,
        "actions": [{"type": "update",
                     "description": f"Update {order.ref} to the recommended dose schedule",
                     "resource": resource}],
    }


def monitoring_requests(monitoring: list[dict], patient_id: str, card_uuid: str) -> dict | None:
    """Suggestion: a draft ServiceRequest per LOINC-coded monitoring test, dated from the plan."""
    actions = [
        {
            "type": "create",
            "description": f"Order {m['test']} for {m['due']}",
            "resource": {
                "resourceType": "ServiceRequest",
                "status": "draft",
                "intent": "proposal",
                "code": {"coding": [{"system": LOINC, "code": m["loinc"]}], "text": m["test"]},
                "subject": {"reference": f"Patient/{patient_id}"},
                "occurrenceDateTime": m["due"],
                "reasonCode": [{"text": m["reason"]}],
            },
        }
        for m in monitoring
        if m.get("loinc")
    ]
    if not actions:
        return None
    return {"label": "Order the monitoring tests",
            "uuid": str(uuid.uuid5(uuid.UUID(card_uuid), "monitoring-orders")),
            "isRecommended": True, "actions": actions}
