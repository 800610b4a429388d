"""Gather the FHIR resources the rules need, from prefetch and draft orders.

Resources are selected by type and code on the raw JSON first (cheap), and only the selected ones
are validated with the `fhir.resources` R4B models (about 40x the cost of decoding them).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from cds.errors import BadRequest, FhirValidationError
from cds.hooks import HookRequest, bundle_resources
from cds.rulebook import Rulebook

#: resource type -> value-set kinds whose codes make the resource relevant
RELEVANT = {
    "Observation": ("lab", "condition"),
    "Condition": ("condition",),
    "Procedure": ("procedure",),
    "MedicationStatement": ("medication", "b12"),
    "MedicationRequest": ("medication", "b12"),
    "MedicationAdministration": ("medication", "b12"),
}
#: validation errors repaired rather than rejected (see `_tolerate`)
TOLERATED = {"extra_forbidden", "list_type"}
#: Quantity.comparator's required binding (QuantityComparator), which the models do not enforce
QUANTITY_COMPARATORS = ("<", "<=", ">=", ">")
MEDICATION_TYPES = ("MedicationStatement", "MedicationRequest", "MedicationAdministration")


@dataclass(frozen=True)
class PatientRecord:
    """The validated resources of one request, by type, plus what was not seen."""

    patient: Any | None
    resources: Mapping[str, tuple[Any, ...]]
    draft_orders: tuple[tuple[Any, Mapping[str, Any]], ...]  #: (validated model, raw JSON)
    gaps: tuple[str, ...] = ()

    def of(self, resource_type: str) -> tuple[Any, ...]:
        return self.resources.get(resource_type, ())


def raw_codings(concept: Any) -> list[tuple[str | None, str | None]]:
    """(system, code) pairs of a raw CodeableConcept, tolerating a single object or a list."""
    concepts = concept if isinstance(concept, list) else [concept]
    pairs = []
    for cc in concepts:
        codings = cc.get("coding") if isinstance(cc, dict) else None
        codings = codings if isinstance(codings, list) else [codings]
        for c in codings:
            if isinstance(c, dict):
                pairs.append((_str(c.get("system")), _str(c.get("code"))))
    return pairs


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def raw_text(concept: Any) -> str:
    """All human-readable text of a raw CodeableConcept (text and codings' displays)."""
    if not isinstance(concept, dict):
        return ""
    parts = [concept.get("text")]
    codings = concept.get("coding")
    if isinstance(codings, list):
        parts += [c.get("display") for c in codings if isinstance(c, dict)]
    return " ".join(p for p in parts if isinstance(p, str))


def medication_concept(resource: Mapping[str, Any]) -> Any:
    """The medication CodeableConcept of a raw medication resource (reference display as text)."""
    concept = resource.get("medicationCodeableConcept")
    if concept is None and isinstance(resource.get("medicationReference"), dict):
        concept = {"text": resource["medicationReference"].get("display")}
    return concept


def _is_relevant(resource: Mapping[str, Any], rulebook: Rulebook) -> bool:
    kinds = RELEVANT.get(resource.get("resourceType", ""))
    if not kinds:
        return False
    if resource["resourceType"] in MEDICATION_TYPES:
        concept = medication_concept(resource)
        text = raw_text(concept)
        return bool(rulebook.coded(kinds, raw_codings(concept))) or (bool(text) and any(
            vs.matches_text(text) for kind in kinds for vs in rulebook.valuesets_of(kind)))
    return bool(rulebook.coded(kinds, raw_codings(resource.get("code"))))


def validate(resource: Mapping[str, Any], where: str) -> Any:
    """Validate a raw resource with its R4B model; the error names the resource and element."""
    rtype = resource.get("resourceType")
    label = f"{rtype}/{resource.get('id', '?')}" if isinstance(resource.get("id"), str) else rtype
    try:
        model = get_fhir_model_class(rtype)
    except KeyError as exc:
        raise FhirValidationError(f"{where}: unknown resourceType {rtype!r}", field=where) from exc
    try:
        validated = model.model_validate(resource)
    except ValidationError as exc:
        repaired = _tolerate(resource, exc.errors())
        if repaired is not None:
            return validate(repaired, where)
        errors = exc.errors()
        first = next((e for e in errors if e["type"] not in TOLERATED), errors[0])
        element = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__") or "(resource)"
        raise FhirValidationError(
            f"{where}: {label} is not valid FHIR R4: element '{element}': {first.get('msg')}",
            field=where,
        ) from exc
    except (TypeError, ValueError) as exc:
        raise FhirValidationError(f"{where}: {label} is not valid FHIR R4: {exc}",
                                  field=where) from exc
    except LookupError as exc:  # fhir_core's KeyError, e.g. `contained` of an unknown type
        raise FhirValidationError(f"{where}: {label} is not valid FHIR R4: unknown type {exc}",
                                  field=where) from exc
    except RecursionError as exc:
        raise FhirValidationError(f"{where}: {label} is nested too deeply to validate",
                                  field=where) from exc
    comparator = getattr(getattr(validated, "valueQuantity", None), "comparator", None)
    if comparator is not None and comparator not in QUANTITY_COMPARATORS:
        raise FhirValidationError(
            f"{where}: {label} is not valid FHIR R4: element 'valueQuantity.comparator': "
            f"{comparator!r} is not one of {list(QUANTITY_COMPARATORS)}",
            field=where,
        )
    return validated


def _tolerate(resource: Mapping[str, Any], errors: list[dict]) -> dict | None:
    """Repair what real clients send that FHIR forbids but that loses nothing when repaired:
    unknown elements (dropped) and a single object where FHIR wants an array (wrapped).
    Returns None when any other error remains, so that one is reported."""
    if not errors or any(e["type"] not in TOLERATED for e in errors):
        return None
    fixed = copy.deepcopy(dict(resource))
    for error in errors:
        *path, last = error["loc"]
        parent: Any = fixed
        for step in path:
            parent = parent[step]
        if error["type"] == "extra_forbidden":
            del parent[last]
        elif isinstance(parent[last], dict):
            parent[last] = [parent[last]]
        else:
            return None
    return fixed


def _names_patient(reference: str, patient_id: str) -> bool:
    """A relative (`Patient/p1`), bare or absolute reference to the patient, with or without a
    version (`Patient/p1/_history/2`, which FHIR allows and still names the same patient)."""
    head, sep, version = reference.rpartition("/_history/")
    if sep and version and "/" not in version:
        reference = head
    return reference in {f"Patient/{patient_id}", patient_id} or reference.endswith(
        f"/Patient/{patient_id}")


def _check_subject(resource: Any, patient_id: str, where: str) -> None:
    subject = getattr(resource, "subject", None) or getattr(resource, "patient", None)
    reference = getattr(subject, "reference", None)
    if reference and not _names_patient(reference, patient_id):
        raise BadRequest(
            f"{where}: {resource.get_resource_type()}/{resource.id} belongs to {reference}, "
            f"not Patient/{patient_id}",
            field=where,
        )


def gather(request: HookRequest, rulebook: Rulebook, gaps: Iterable[str] = ()) -> PatientRecord:
    """Select, validate and subject-check the resources of `request` that the rules can use.

    `gaps` says, for the card, which prefetch data could not be seen and why.
    """
    patient = None
    resources: dict[str, list[Any]] = {}
    for key, value in request.prefetch.items():
        if value is None:
            continue
        for i, raw in enumerate(bundle_resources(value)):
            where = f"prefetch.{key}" if raw is value else f"prefetch.{key}.entry[{i}]"
            if raw.get("resourceType") == "Patient":
                patient = validate(raw, where)
                if patient.id != request.patient_id:
                    raise BadRequest(
                        f"{where}: Patient/{patient.id} is not context.patientId "
                        f"{request.patient_id!r}",
                        field=where,
                    )
            elif _is_relevant(raw, rulebook):
                model = validate(raw, where)
                _check_subject(model, request.patient_id, where)
                resources.setdefault(raw["resourceType"], []).append(model)
    drafts = []
    selected = {s for s in request.selections if isinstance(s, str)}
    chosen = [r for r in request.draft_orders
              if f"{r.get('resourceType')}/{r.get('id')}" in selected]
    for i, raw in enumerate(request.draft_orders):
        where = f"context.draftOrders.entry[{i}]"
        if chosen and raw not in chosen:
            continue  # order-select: only the orders just selected (when they are in the Bundle)
        if raw.get("resourceType") == "MedicationRequest" and _is_relevant(raw, rulebook):
            model = validate(raw, where)
            _check_subject(model, request.patient_id, where)
            drafts.append((model, raw))
    return PatientRecord(
        patient=patient,
        resources={k: tuple(v) for k, v in resources.items()},
        draft_orders=tuple(drafts),
        gaps=tuple(gaps),
    )
