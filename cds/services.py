"""The three CDS services, as data: id, hook, title, description and prefetch templates.

The observation prefetch lists every LOINC code of the `lab` value sets in `rules/valuesets/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cds.rulebook import Rulebook

_P = "{{context.patientId}}"


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    title: str
    description: str

    def describe(self, prefetch: dict[str, str]) -> dict[str, Any]:
        return {"hook": self.hook, "id": self.id, "title": self.title,
                "description": self.description, "prefetch": prefetch}


SERVICES = (
    Service(
        "b12-patient-view", "patient-view", "Vitamin B12 therapy review",
        "Assesses vitamin B12 deficiency and injection therapy: phase (repletion or "
        "maintenance), dose schedule and monitoring, with the evidence behind it.",
    ),
    Service(
        "b12-order-select", "order-select", "Vitamin B12 injection order advice",
        "When a B12 product is selected, states the phase, the recommended dose schedule "
        "and the monitoring timeline for this patient.",
    ),
    Service(
        "b12-order-sign", "order-sign", "Vitamin B12 injection order check",
        "Before a B12 order is signed, checks it against the patient's phase, cause and "
        "neurological status and proposes the monitoring timeline.",
    ),
)
BY_ID = {s.id: s for s in SERVICES}


def prefetch_templates(rulebook: Rulebook) -> dict[str, str]:
    """Prefetch queries shared by every service (patient, labs, conditions, meds, procedures)."""
    codes = ",".join(
        f"{c.system}|{c.code}" for vs in rulebook.valuesets_of("lab") for c in vs.codes
    )
    return {
        "patient": f"Patient/{_P}",
        "labs": f"Observation?patient={_P}&code={codes}&_sort=-date&_count=100",
        "conditions": f"Condition?patient={_P}",
        "medicationStatements": f"MedicationStatement?patient={_P}",
        "medicationRequests": f"MedicationRequest?patient={_P}",
        "medicationAdministrations": f"MedicationAdministration?patient={_P}",
        "procedures": f"Procedure?patient={_P}",
    }
