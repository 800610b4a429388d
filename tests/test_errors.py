"""Bad input: a 4xx JSON error naming the field, never a 500 and never a card."""

from __future__ import annotations

import copy

import pytest

from cds import create_app
from tests.replay import FIXTURE_CONFIG

PV = "/cds-services/b12-patient-view"
OS = "/cds-services/b12-order-select"


def _post(client, url: str, body: dict) -> tuple[int, dict]:
    response = client.post(url, json=body)
    return response.status_code, response.get_json()


def _pv(load_fixture):
    return copy.deepcopy(load_fixture("pv-pernicious-anemia-deficient"))


def _os(load_fixture):
    return copy.deepcopy(load_fixture("os-metformin-deficient"))


def _without(body: dict, *path: str) -> dict:
    node = body
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return body


@pytest.mark.parametrize(("path", "field"), [
    (("hook",), "hook"), (("hookInstance",), "hookInstance"), (("context",), "context"),
    (("context", "patientId"), "context.patientId"),
])
def test_missing_required_field(client, load_fixture, path, field):
    status, body = _post(client, PV, _without(_pv(load_fixture), *path))
    assert status == 400
    assert body["field"] == field
    assert field.split(".")[-1] in body["detail"]


@pytest.mark.parametrize(("data", "content_type", "status", "field", "detail"), [
    (b"{not json", "application/json", 400, "body", "the request body is not valid JSON"),
    (b"[1]", "application/json", 400, "body", "must be a JSON object, not an array"),
    (b'"text"', "application/json", 400, "body", "must be a JSON object, not a string"),
    (b"null", "application/json", 400, "body", "must be a JSON object, not null"),
    (b"\xff\xfe", "application/json", 400, "body", "not valid JSON"),
    (b"{}", "text/plain", 415, "Content-Type", "Content-Type must be application/json"),
])
def test_body_that_is_not_a_json_object(client, data, content_type, status, field, detail):
    response = client.post(PV, data=data, content_type=content_type)
    assert response.status_code == status
    assert response.get_json()["field"] == field
    assert detail in response.get_json()["detail"]


def test_hook_must_match_the_service(client, load_fixture):
    status, body = _post(client, OS, _pv(load_fixture))
    assert (status, body) == (400, {"error": "bad request", "field": "hook", "detail":
                                    "this service answers 'order-select', not 'patient-view'"})


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda b: b.update(hookInstance=7), "hookInstance"),
    (lambda b: b.update(context=None), "context"),
    (lambda b: b.update(context=[]), "context"),
    (lambda b: b["context"].update(patientId=12), "context.patientId"),
    (lambda b: b["context"].update(patientId="a b/c"), "context.patientId"),
    (lambda b: b.update(prefetch=[]), "prefetch"),
    (lambda b: b["prefetch"].update(labs="Observation?code=x"), "prefetch.labs"),
    (lambda b: b["prefetch"].update(labs={"entry": []}), "prefetch.labs"),
    (lambda b: b["prefetch"].update(labs={"resourceType": "Bundle", "entry": {}}),
     "prefetch.labs.entry"),
    (lambda b: b["prefetch"]["labs"]["entry"].append({"resource": 5}),
     "prefetch.labs.entry[1].resource"),
    (lambda b: b.update(fhirServer=5), "fhirServer"),
    (lambda b: b.update(fhirAuthorization="token"), "fhirAuthorization"),
])
def test_wrong_shapes_are_named(client, load_fixture, mutate, field):
    body = _pv(load_fixture)
    mutate(body)
    status, answer = _post(client, PV, body)
    assert status == 400
    assert answer["field"] == field
    assert answer["error"] == "bad request"


@pytest.mark.parametrize(("mutate", "detail"), [
    (lambda b: b["context"].pop("draftOrders"),
     "'context.draftOrders' is required for order hooks"),
    (lambda b: b["context"].update(draftOrders={"resourceType": "MedicationRequest"}),
     "'context.draftOrders' must be a FHIR Bundle"),
    (lambda b: b["context"].update(draftOrders=[]), "'context.draftOrders' must be a FHIR Bundle"),
])
def test_order_hooks_need_a_draft_orders_bundle(client, load_fixture, mutate, detail):
    body = _os(load_fixture)
    mutate(body)
    status, answer = _post(client, OS, body)
    assert (status, answer["field"], answer["detail"]) == (400, "context.draftOrders", detail)


def test_invalid_fhir_names_resource_and_element(client, load_fixture):
    body = _pv(load_fixture)
    body["prefetch"]["labs"]["entry"][0]["resource"]["valueQuantity"]["value"] = "abc"
    status, answer = _post(client, PV, body)
    assert status == 400
    assert answer["error"] == "invalid FHIR resource"
    assert answer["field"] == "prefetch.labs.entry[0]"
    assert answer["detail"].startswith(
        "prefetch.labs.entry[0]: Observation/p01-b12 is not valid FHIR R4: "
        "element 'valueQuantity.value'")


def test_invalid_draft_order_is_named(client, load_fixture):
    body = _os(load_fixture)
    body["context"]["draftOrders"]["entry"][0]["resource"]["status"] = 12
    status, answer = _post(client, OS, body)
    assert (status, answer["field"]) == (400, "context.draftOrders.entry[0]")
    assert "MedicationRequest/p13-draft is not valid FHIR R4: element 'status'" in answer["detail"]


def test_patient_must_be_the_context_patient(client, load_fixture):
    body = _pv(load_fixture)
    body["prefetch"]["patient"]["id"] = "someone-else"
    status, answer = _post(client, PV, body)
    assert (status, answer["field"]) == (400, "prefetch.patient")
    assert answer["detail"] == ("prefetch.patient: Patient/someone-else is not "
                                "context.patientId 'p01'")


def test_resource_of_another_patient_is_refused(client, load_fixture):
    body = _pv(load_fixture)
    body["prefetch"]["labs"]["entry"][0]["resource"]["subject"]["reference"] = "Patient/p99"
    status, answer = _post(client, PV, body)
    assert (status, answer["field"]) == (400, "prefetch.labs.entry[0]")
    assert answer["detail"] == ("prefetch.labs.entry[0]: Observation/p01-b12 belongs to "
                                "Patient/p99, not Patient/p01")


def test_unknown_service_is_404(client, load_fixture):
    status, answer = _post(client, "/cds-services/b12-nope", _pv(load_fixture))
    assert (status, answer) == (404, {"error": "not found", "field": "id",
                                      "detail": "no CDS service with id 'b12-nope'"})


def test_unknown_route_and_wrong_method_are_json(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not found"
    response = client.get(PV)
    assert response.status_code == 405
    assert response.get_json()["error"] == "method not allowed"


def test_body_over_the_limit_is_413(load_fixture):
    app = create_app({**FIXTURE_CONFIG, "MAX_CONTENT_LENGTH": 1000})
    response = app.test_client().post(PV, json=_pv(load_fixture))
    assert response.status_code == 413
    assert response.get_json() == {"error": "request entity too large",
                                   "detail": "the request body is larger than 1000 bytes"}
