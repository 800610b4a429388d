"""Draft-order reading and the order card's suggestions, field by field."""

from __future__ import annotations

import copy
import json

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds import orders, rulebook
from cds.config import BUNDLED_RULES
from tests.replay import FIXTURES, fixture_app, replay_file

BOOK = rulebook.load(BUNDLED_RULES)


@pytest.mark.parametrize(("text", "days"), [
    ("1000 mcg IM monthly", 30), ("once a month", 30), ("1 mL IM once weekly", 7),
    ("inject daily for 7 days", 1), ("every other day", 2), ("on alternate days", 2),
    ("three times a week for 2 weeks", 2.333), ("3x/week", 2.333), ("every 3 months", 90),
    ("every 2-3 months", 60), ("every 2 weeks", 14), ("as directed", None), ("", None),
])
def test_schedule_from_text(text, days):
    assert orders._text_interval(text) == days


@pytest.mark.parametrize(("value", "unit", "form", "mcg"), [
    (1000, "mcg", None, 1000), (1000, "ug", None, 1000), (1, "mg", None, 1000),
    (1, "mL", "b12-injection", 1000), (1, "mL", "b12-oral", None),
    (0.5, "mL", "b12-injection", 500), (2, "tablets", None, None),
])
def test_dose_normalised_to_mcg(value, unit, form, mcg):
    assert orders._to_mcg(value, unit, BOOK, form) == mcg


def _cards(name: str) -> list[dict]:
    result = replay_file(FIXTURES / f"{name}.json")
    assert result["status"] == 200
    return result["body"]["cards"]


def _request(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_update_suggestion_is_the_same_draft_with_the_recommended_dosage():
    name = "os-metformin-deficient"
    order_card = _cards(name)[1]
    update = order_card["suggestions"][0]
    assert update["label"] == "Use the recommended schedule"
    assert update["isRecommended"] is True
    (action,) = update["actions"]
    assert action["type"] == "update"
    draft = _request(name)["context"]["draftOrders"]["entry"][0]["resource"]
    resource = action["resource"]
    assert {k: v for k, v in resource.items() if k != "dosageInstruction"} == {
        k: v for k, v in draft.items() if k != "dosageInstruction"}
    assert resource["id"] == draft["id"] == "p13-draft"
    steps = resource["dosageInstruction"]
    assert [s["sequence"] for s in steps] == [1, 2, 3]
    assert [s["timing"]["repeat"] for s in steps] == [
        {"frequency": 1, "period": 1, "periodUnit": "d", "count": 7},
        {"frequency": 1, "period": 1, "periodUnit": "wk", "count": 4},
        {"frequency": 1, "period": 1, "periodUnit": "mo"},
    ]
    assert all(s["doseAndRate"] == [{"doseQuantity": {
        "value": 1000, "unit": "mcg", "system": "http://unitsofmeasure.org", "code": "ug"}}]
        for s in steps)
    assert all(s["route"] == {"text": "Intramuscular"} for s in steps)
    MedicationRequest.model_validate(resource)  # valid FHIR R4


def test_monitoring_suggestion_creates_draft_service_requests():
    order_card = _cards("os-metformin-deficient")[1]
    create = order_card["suggestions"][1]
    assert create["label"] == "Order the monitoring tests"
    resources = [a["resource"] for a in create["actions"]]
    assert all(a["type"] == "create" for a in create["actions"])
    assert [(r["code"]["coding"][0]["code"], r["occurrenceDateTime"]) for r in resources] == [
        ("718-7", "2026-06-08"), ("14196-0", "2026-06-08"), ("718-7", "2026-07-27")]
    for r in resources:
        assert (r["status"], r["intent"], r["subject"]) == (
            "draft", "proposal", {"reference": "Patient/p13"})
        assert r["code"]["coding"][0]["system"] == "http://loinc.org"
        ServiceRequest.model_validate(r)


def test_card_and_suggestion_ids_and_override_reasons():
    order_card = _cards("os-metformin-deficient")[1]
    assert order_card["selectionBehavior"] == "any"
    ids = [order_card["uuid"], *(s["uuid"] for s in order_card["suggestions"])]
    assert len(set(ids)) == 3
    assert [r["code"] for r in order_card["overrideReasons"]] == [
        "patient-preference", "specialist-advice", "dose-given-elsewhere", "other"]


def test_loading_under_way_suggests_only_the_remaining_doses():
    steps = _cards("os-loading-under-way-order-continues")[1]["suggestions"][0]["actions"][0][
        "resource"]["dosageInstruction"]
    assert [s["timing"]["repeat"].get("count") for s in steps] == [4, 4, None]
    assert steps[0]["text"] == "1000 mcg IM once daily for 4 more injection(s)"


def test_maintenance_update_has_only_the_maintenance_step():
    card = _cards("osign-maintenance-daily-order-structured")[1]
    steps = card["suggestions"][0]["actions"][0]["resource"]["dosageInstruction"]
    assert [s["timing"]["repeat"] for s in steps] == [
        {"frequency": 1, "period": 1, "periodUnit": "mo"}]


def test_order_sign_opens_with_the_pharmacist_verification():
    detail = _cards("osign-gastrectomy-censored")[1]["detail"]
    lines = detail.splitlines()
    assert lines[0] == "**Pharmacist verification**"
    assert lines[1].startswith("- Indication: phase repletion; cause malabsorption")
    assert lines[2].startswith("- Order as written: vitamin B12 1 MG/ML Injectable Solution: "
                               "1000 mcg IM monthly (schedule read from the order's text only)")
    assert lines[3].startswith("- Recommended: 1000 mcg IM once daily for 7 days")
    assert lines[4].startswith("- Monitoring due: 2026-06-08 Haemoglobin and MCV (FBC)")
    assert lines[5] == "- Safety: none"


def test_no_update_offered_when_the_draft_has_no_id_or_is_not_an_injection():
    assert [s["label"] for s in _cards("os-real-client-deviations")[1]["suggestions"]] == [
        "Order the monitoring tests"]
    assert [s["label"] for s in _cards("osign-oral-tablet-pernicious-anemia")[1]
            ["suggestions"]] == ["Order the monitoring tests"]


def test_patient_view_has_no_order_card_and_non_b12_drafts_are_ignored():
    assert len(_cards("pv-pernicious-anemia-deficient")) == 1
    body = copy.deepcopy(_request("os-metformin-deficient"))
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"] = {"coding": [{
        "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6809",
        "display": "metformin"}]}
    response = fixture_app().test_client().post("/cds-services/b12-order-select", json=body)
    assert response.status_code == 200
    assert len(response.get_json()["cards"]) == 1


@pytest.mark.parametrize(("repeat", "interval"), [
    ({"frequency": 1, "period": 0, "periodUnit": "d"}, None),
    ({"frequency": 1, "period": -7, "periodUnit": "d"}, None),
    ({"frequency": 1, "period": 1e308, "periodUnit": "a"}, None),
    ({"frequency": 2147483647, "period": 1, "periodUnit": "d"}, None),
    ({"frequency": 3, "period": 1, "periodUnit": "wk"}, 2.333),
])
def test_impossible_timing_is_unreadable_not_approved(repeat, interval):
    body = _request("os-matches-loading-structured")
    body["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"][0]["timing"] = {
        "repeat": repeat}
    response = fixture_app().test_client().post("/cds-services/b12-order-select", json=body)
    assert response.status_code == 200
    assert "Infinity" not in response.get_data(as_text=True)
    order = response.get_json()["cards"][1]["extension"]["b12cds.order"]
    assert order["interval_days"] == interval
    if interval is None:
        assert order["schedule_source"] == "none"
        assert order["rules"] == ["order-schedule-unreadable"]


def test_thousands_separator_in_the_dose_text():
    assert orders._TEXT_DOSE.search("inject 1,000 mcg im monthly").group(1) == "1,000"
    assert orders._dose(None, "inject 1,000 mcg im monthly", BOOK, "b12-injection") == 1000


def test_medication_reference_is_read_by_its_display():
    body = _request("pv-loading-under-way")
    for entry in body["prefetch"]["medicationAdministrations"]["entry"]:
        entry["resource"].pop("medicationCodeableConcept")
        entry["resource"]["medicationReference"] = {
            "display": "Cyanocobalamin 1000 mcg/mL injection"}
    response = fixture_app().test_client().post("/cds-services/b12-patient-view", json=body)
    card = response.get_json()["cards"][0]
    assert card["summary"].startswith("B12 repletion (loading), 3 of 11 doses given, 8 to go")


def test_intended_statement_is_not_an_established_course():
    body = _request("pv-neuro-untreated-critical")
    body["prefetch"]["medicationStatements"]["entry"].append({"resource": {
        "resourceType": "MedicationStatement", "id": "p12-intended", "status": "intended",
        "medicationCodeableConcept": {"coding": [{
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "309594"}]},
        "subject": {"reference": "Patient/p12"}}})
    card = fixture_app().test_client().post("/cds-services/b12-patient-view",
                                            json=body).get_json()["cards"][0]
    assert (card["indicator"], card["extension"]["b12cds.assessment"]["phase"]) == (
        "critical", "repletion")
