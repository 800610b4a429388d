"""Bad input through the Flask test client: the exact status, a JSON `{"error", "detail",
"field"}` body naming what is wrong, and never a 5xx."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from cds import create_app
from tests.replay import FIXTURE_CONFIG

PV = "/cds-services/b12-patient-view"
OS = "/cds-services/b12-order-select"
PV_FIXTURE = "pv-pernicious-anemia-deficient"  # patient p01, lab Observation/p01-b12
OS_FIXTURE = "os-metformin-deficient"  # patient p13, draft MedicationRequest/p13-draft

Mutation = Callable[[dict[str, Any]], Any]


def _lab(body: dict) -> dict:
    return body["prefetch"]["labs"]["entry"][0]["resource"]


def _draft(body: dict) -> dict:
    return body["context"]["draftOrders"]["entry"][0]["resource"]


def _nested_extension(depth: int) -> list[dict]:
    node: dict = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(depth):
        node = {"url": "http://example.org/nest", "extension": [node]}
    return [node]


def _assert_error(response, status: int, field: str | None) -> dict:
    """The response has `status`, is JSON with non-empty `error` and `detail`, names `field`."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body, dict)
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body.get("field") == field
    assert set(body) <= {"error", "detail", "field"}
    return body


# --- the body itself --------------------------------------------------------------------------

RAW_BODIES: dict[str, tuple[bytes, str, int, str, str]] = {
    # name: (data, content type, status, field, text in detail)
    "not-json": (b"{not json", "application/json", 400, "body",
                 "the request body is not valid JSON"),
    "truncated-json": (b'{"hook": "patient-view"', "application/json", 400, "body",
                       "the request body is not valid JSON"),
    "empty-body": (b"", "application/json", 400, "body", "the request body is not valid JSON"),
    "not-utf8": (b"\xff\xfe\x00", "application/json", 400, "body",
                 "the request body is not valid JSON"),
    "array": (b"[]", "application/json", 400, "body",
              "the request body must be a JSON object, not an array"),
    "array-of-request": (b'[{"hook": "patient-view"}]', "application/json", 400, "body",
                         "the request body must be a JSON object, not an array"),
    "string": (b'"patient-view"', "application/json", 400, "body",
               "the request body must be a JSON object, not a string"),
    "null": (b"null", "application/json", 400, "body",
             "the request body must be a JSON object, not null"),
    "number": (b"42", "application/json", 400, "body",
               "the request body must be a JSON object, not a scalar"),
    "nested-too-deeply": (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "body",
                          "the request body is not valid JSON"),
    "object-nested-too-deeply": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json",
                                 400, "body", "the request body is not valid JSON"),
    "text-plain": (b"{}", "text/plain", 415, "Content-Type",
                   "Content-Type must be application/json, not 'text/plain'"),
    "form": (b"hook=patient-view", "application/x-www-form-urlencoded", 415, "Content-Type",
             "Content-Type must be application/json"),
}


@pytest.mark.parametrize("name", RAW_BODIES, ids=list(RAW_BODIES))
def test_body_that_is_not_a_json_object(client, name):
    data, content_type, status, field, detail = RAW_BODIES[name]
    response = client.post(PV, data=data, content_type=content_type)
    body = _assert_error(response, status, field)
    assert detail in body["detail"]
    assert body["error"] == ("unsupported media type" if status == 415 else "bad request")


def test_no_content_type_is_415(client):
    response = client.post(PV, data=b"{}")
    body = _assert_error(response, 415, "Content-Type")
    assert body["detail"] == "Content-Type must be application/json, not 'none'"


def test_fhir_json_content_type_is_accepted(client, load_fixture):
    response = client.post(PV, data=json.dumps(load_fixture(PV_FIXTURE)),
                           content_type="application/fhir+json")
    assert response.status_code == 200
    assert response.get_json()["cards"]


# --- the CDS Hooks envelope -------------------------------------------------------------------

PV_CASES: dict[str, tuple[Mutation, int, str, str]] = {
    # name: (mutation of the patient-view fixture, status, field, exact detail or a part of it)
    "missing-hook": (lambda b: b.pop("hook"), 400, "hook", "'hook' is required"),
    "missing-hookInstance": (lambda b: b.pop("hookInstance"), 400, "hookInstance",
                             "'hookInstance' is required"),
    "missing-context": (lambda b: b.pop("context"), 400, "context",
                        "'context' must be a JSON object"),
    "missing-patientId": (lambda b: b["context"].pop("patientId"), 400, "context.patientId",
                          "'context.patientId' is required"),
    "hook-of-another-service": (lambda b: b.update(hook="order-sign"), 400, "hook",
                                "this service answers 'patient-view', not 'order-sign'"),
    "hook-unknown": (lambda b: b.update(hook="encounter-start"), 400, "hook",
                     "this service answers 'patient-view', not 'encounter-start'"),
    # odd JSON types
    "hook-number": (lambda b: b.update(hook=1), 400, "hook", "'hook' must be a non-empty string"),
    "hook-list": (lambda b: b.update(hook=["patient-view"]), 400, "hook",
                  "'hook' must be a non-empty string"),
    "hook-empty": (lambda b: b.update(hook="  "), 400, "hook",
                   "'hook' must be a non-empty string"),
    "hookInstance-number": (lambda b: b.update(hookInstance=7), 400, "hookInstance",
                            "'hookInstance' must be a non-empty string"),
    "hookInstance-object": (lambda b: b.update(hookInstance={}), 400, "hookInstance",
                            "'hookInstance' must be a non-empty string"),
    "hookInstance-lone-surrogate": (lambda b: b.update(hookInstance="abc\ud800"), 400,
                                    "hookInstance", "'hookInstance' is not valid Unicode text"),
    "context-null": (lambda b: b.update(context=None), 400, "context",
                     "'context' must be a JSON object"),
    "context-array": (lambda b: b.update(context=[{"patientId": "p01"}]), 400, "context",
                      "'context' must be a JSON object"),
    "context-string": (lambda b: b.update(context="p01"), 400, "context",
                       "'context' must be a JSON object"),
    "patientId-number": (lambda b: b["context"].update(patientId=1), 400, "context.patientId",
                         "'context.patientId' must be a non-empty string"),
    "patientId-bool": (lambda b: b["context"].update(patientId=True), 400, "context.patientId",
                       "'context.patientId' must be a non-empty string"),
    "patientId-null": (lambda b: b["context"].update(patientId=None), 400, "context.patientId",
                       "'context.patientId' is required"),
    "patientId-not-fhir-id": (lambda b: b["context"].update(patientId="Patient/p01"), 400,
                              "context.patientId", "'context.patientId' is not a valid FHIR id"),
    "patientId-too-long": (lambda b: b["context"].update(patientId="p" * 65), 400,
                           "context.patientId", "'context.patientId' is not a valid FHIR id"),
    "fhirServer-number": (lambda b: b.update(fhirServer=5), 400, "fhirServer",
                          "'fhirServer' must be a string"),
    "fhirServer-not-url": (lambda b: b.update(fhirServer="ehr.example.org/fhir"), 400,
                           "fhirServer", "'fhirServer' must be an absolute http(s) URL"),
    "fhirServer-bad-ipv6": (lambda b: b.update(fhirServer="http://[ehr/fhir"), 400, "fhirServer",
                            "'fhirServer' is not a valid URL"),
    "fhirServer-bad-port": (lambda b: b.update(fhirServer="http://ehr:port/fhir"), 400,
                            "fhirServer", "'fhirServer' is not a valid URL"),
    "fhirAuthorization-string": (lambda b: b.update(fhirAuthorization="Bearer x"), 400,
                                 "fhirAuthorization", "'fhirAuthorization' must be a JSON object"),
    # prefetch
    "prefetch-array": (lambda b: b.update(prefetch=[]), 400, "prefetch",
                       "'prefetch' must be a JSON object of key -> resource"),
    "prefetch-string": (lambda b: b.update(prefetch="Patient/p01"), 400, "prefetch",
                        "'prefetch' must be a JSON object of key -> resource"),
    "prefetch-value-string": (lambda b: b["prefetch"].update(labs="Observation?patient=p01"),
                              400, "prefetch.labs",
                              "prefetch 'labs' must be a FHIR resource, a Bundle or null"),
    "prefetch-value-number": (lambda b: b["prefetch"].update(patient=3), 400, "prefetch.patient",
                              "prefetch 'patient' must be a FHIR resource, a Bundle or null"),
    "prefetch-value-no-resourceType": (lambda b: b["prefetch"].update(labs={"entry": []}), 400,
                                       "prefetch.labs",
                                       "prefetch 'labs' must be a FHIR resource, a Bundle or null"),
    "prefetch-value-resourceType-number": (
        lambda b: b["prefetch"].update(patient={"resourceType": 5, "id": "p01"}), 400,
        "prefetch.patient", "prefetch 'patient' must be a FHIR resource, a Bundle or null"),
    "bundle-entry-not-array": (
        lambda b: b["prefetch"]["labs"].update(entry={"resource": _lab(b)}), 400,
        "prefetch.labs.entry", "'prefetch.labs.entry' must be an array"),
    "bundle-entry-resource-number": (
        lambda b: b["prefetch"]["labs"]["entry"].append({"resource": 5}), 400,
        "prefetch.labs.entry[1].resource", "'prefetch.labs.entry[1].resource' must be a FHIR "
        "resource"),
    "bundle-entry-resource-no-resourceType": (
        lambda b: b["prefetch"]["conditions"]["entry"].insert(0, {"resource": {"id": "x"}}), 400,
        "prefetch.conditions.entry[0].resource",
        "'prefetch.conditions.entry[0].resource' must be a FHIR resource"),
    "bundle-entry-is-a-string": (
        lambda b: b["prefetch"]["labs"]["entry"].append("Observation/x"), 400,
        "prefetch.labs.entry[1].resource", "'prefetch.labs.entry[1].resource' must be a FHIR "
        "resource"),
    # FHIR content
    "observation-value-not-a-number": (
        lambda b: _lab(b)["valueQuantity"].update(value="abc"), 400, "prefetch.labs.entry[0]",
        "prefetch.labs.entry[0]: Observation/p01-b12 is not valid FHIR R4: "
        "element 'valueQuantity.value'"),
    "observation-bad-date": (
        lambda b: _lab(b).update(effectiveDateTime="2026-13-45"), 400, "prefetch.labs.entry[0]",
        "prefetch.labs.entry[0]: Observation/p01-b12 is not valid FHIR R4: "
        "element 'effectiveDateTime'"),
    "observation-subject-string": (
        lambda b: _lab(b).update(subject="Patient/p01"), 400, "prefetch.labs.entry[0]",
        "prefetch.labs.entry[0]: Observation/p01-b12 is not valid FHIR R4: element 'subject'"),
    "observation-comparator-not-in-binding": (
        lambda b: _lab(b)["valueQuantity"].update(comparator="~"), 400,
        "prefetch.labs.entry[0]",
        "prefetch.labs.entry[0]: Observation/p01-b12 is not valid FHIR R4: "
        "element 'valueQuantity.comparator': '~' is not one of ['<', '<=', '>=', '>']"),
    "observation-contained-unknown-type": (
        lambda b: _lab(b).update(contained=[{"resourceType": "NotAType", "id": "c1"}]), 400,
        "prefetch.labs.entry[0]",
        "prefetch.labs.entry[0]: Observation/p01-b12 is not valid FHIR R4"),
    "observation-nested-too-deeply": (
        lambda b: _lab(b).update(extension=_nested_extension(400)), 400,
        "prefetch.labs.entry[0]", "prefetch.labs.entry[0]: Observation/p01-b12"),
    "observation-id-number": (
        lambda b: _lab(b).update(id=7), 400, "prefetch.labs.entry[0]",
        "prefetch.labs.entry[0]: Observation is not valid FHIR R4: element 'id'"),
    "condition-not-valid": (
        lambda b: b["prefetch"]["conditions"]["entry"][0]["resource"].update(
            onsetDateTime="last spring"), 400, "prefetch.conditions.entry[0]",
        "prefetch.conditions.entry[0]: Condition/p01-pa is not valid FHIR R4: "
        "element 'onsetDateTime'"),
    "patient-of-another-id": (
        lambda b: b["prefetch"]["patient"].update(id="p02"), 400, "prefetch.patient",
        "prefetch.patient: Patient/p02 is not context.patientId 'p01'"),
    "patient-without-id": (
        lambda b: b["prefetch"]["patient"].pop("id"), 400, "prefetch.patient",
        "is not context.patientId 'p01'"),
    "patient-invalid": (
        lambda b: b["prefetch"]["patient"].update(birthDate="15/03/1960"), 400,
        "prefetch.patient", "prefetch.patient: Patient/p01 is not valid FHIR R4: "
        "element 'birthDate'"),
    "observation-of-another-patient": (
        lambda b: _lab(b).update(subject={"reference": "Patient/p99"}), 400,
        "prefetch.labs.entry[0]",
        "prefetch.labs.entry[0]: Observation/p01-b12 belongs to Patient/p99, not Patient/p01"),
    "condition-of-another-patient": (
        lambda b: b["prefetch"]["conditions"]["entry"][0]["resource"].update(
            subject={"reference": "http://ehr.example.org/fhir/Patient/p99"}), 400,
        "prefetch.conditions.entry[0]",
        "prefetch.conditions.entry[0]: Condition/p01-pa belongs to "
        "http://ehr.example.org/fhir/Patient/p99, not Patient/p01"),
}


def _mutated(load_fixture, name: str, mutate: Mutation) -> dict:
    body = copy.deepcopy(load_fixture(name))
    mutate(body)
    return body


@pytest.mark.parametrize("name", PV_CASES, ids=list(PV_CASES))
def test_patient_view_bad_input_names_the_field(client, load_fixture, name):
    mutate, status, field, detail = PV_CASES[name]
    response = client.post(PV, json=_mutated(load_fixture, PV_FIXTURE, mutate))
    body = _assert_error(response, status, field)
    assert detail in body["detail"]


def test_invalid_fhir_is_its_own_error(client, load_fixture):
    body = _mutated(load_fixture, PV_FIXTURE,
                    lambda b: _lab(b)["valueQuantity"].update(value="abc"))
    answer = _assert_error(client.post(PV, json=body), 400, "prefetch.labs.entry[0]")
    assert answer["error"] == "invalid FHIR resource"
    assert "Observation/p01-b12" in answer["detail"]
    assert "valueQuantity.value" in answer["detail"]


def test_envelope_errors_are_exact(client, load_fixture):
    body = _mutated(load_fixture, PV_FIXTURE, lambda b: b["context"].pop("patientId"))
    response = client.post(PV, json=body)
    assert response.status_code == 400
    assert response.get_json() == {"error": "bad request", "field": "context.patientId",
                                   "detail": "'context.patientId' is required"}


OS_CASES: dict[str, tuple[Mutation, str, str]] = {
    "draftOrders-missing": (lambda b: b["context"].pop("draftOrders"), "context.draftOrders",
                            "'context.draftOrders' is required for order hooks"),
    "draftOrders-null": (lambda b: b["context"].update(draftOrders=None), "context.draftOrders",
                         "'context.draftOrders' is required for order hooks"),
    "draftOrders-array": (lambda b: b["context"].update(draftOrders=[_draft(b)]),
                          "context.draftOrders", "'context.draftOrders' must be a FHIR Bundle"),
    "draftOrders-a-resource": (lambda b: b["context"].update(draftOrders=_draft(b)),
                               "context.draftOrders",
                               "'context.draftOrders' must be a FHIR Bundle"),
    "draftOrders-string": (lambda b: b["context"].update(draftOrders="Bundle/1"),
                           "context.draftOrders", "'context.draftOrders' must be a FHIR Bundle"),
    "draftOrders-entry-null": (lambda b: b["context"]["draftOrders"].update(entry=None),
                               "context.draftOrders.entry",
                               "'context.draftOrders.entry' must be an array"),
    "draftOrders-entry-not-resource": (
        lambda b: b["context"]["draftOrders"]["entry"].append({"resource": [1]}),
        "context.draftOrders.entry[1].resource",
        "'context.draftOrders.entry[1].resource' must be a FHIR resource"),
    "selections-not-list": (lambda b: b["context"].update(selections="MedicationRequest/x"),
                            "context.selections",
                            "'context.selections' must be an array of references"),
    "selections-numbers": (lambda b: b["context"].update(selections=[1, 2]),
                           "context.selections",
                           "'context.selections' must be an array of references"),
    "draft-order-invalid": (lambda b: _draft(b).update(status=12),
                            "context.draftOrders.entry[0]",
                            "context.draftOrders.entry[0]: MedicationRequest/p13-draft is not "
                            "valid FHIR R4: element 'status'"),
    "draft-order-of-another-patient": (
        lambda b: _draft(b).update(subject={"reference": "Patient/p01"}),
        "context.draftOrders.entry[0]",
        "context.draftOrders.entry[0]: MedicationRequest/p13-draft belongs to Patient/p01, "
        "not Patient/p13"),
    "patient-view-request-on-order-service": (lambda b: b.update(hook="patient-view"), "hook",
                                              "this service answers 'order-select', not "
                                              "'patient-view'"),
}


@pytest.mark.parametrize("name", OS_CASES, ids=list(OS_CASES))
def test_order_select_bad_input_names_the_field(client, load_fixture, name):
    mutate, field, detail = OS_CASES[name]
    response = client.post(OS, json=_mutated(load_fixture, OS_FIXTURE, mutate))
    body = _assert_error(response, 400, field)
    assert detail in body["detail"]


def test_patient_view_request_on_order_service_is_rejected(client, load_fixture):
    response = client.post(OS, json=load_fixture(PV_FIXTURE))
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "bad request", "field": "hook",
        "detail": "this service answers 'order-select', not 'patient-view'"}


# --- routes and limits ------------------------------------------------------------------------

def test_unknown_service_is_404(client, load_fixture):
    response = client.post("/cds-services/b12-unknown", json=load_fixture(PV_FIXTURE))
    body = _assert_error(response, 404, "id")
    assert body == {"error": "not found", "field": "id",
                    "detail": "no CDS service with id 'b12-unknown'"}


def test_unknown_service_feedback_is_404(client):
    response = client.post("/cds-services/b12-unknown/feedback", json={"feedback": []})
    body = _assert_error(response, 404, "id")
    assert body["detail"] == "no CDS service with id 'b12-unknown'"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_on_a_service_is_405_json(client, method):
    response = client.open(PV, method=method)
    body = _assert_error(response, 405, None)
    assert body["error"] == "method not allowed"
    assert "POST" in response.headers["Allow"]


def test_unknown_route_is_404_json(client):
    body = _assert_error(client.get("/cds-services/b12-patient-view/nothing/here"), 404, None)
    assert body["error"] == "not found"


def test_body_over_max_content_length_is_413_json(load_fixture):
    app = create_app({**FIXTURE_CONFIG, "MAX_CONTENT_LENGTH": 1000})
    request = load_fixture(PV_FIXTURE)
    assert len(json.dumps(request)) > 1000
    response = app.test_client().post(PV, json=request)
    body = _assert_error(response, 413, None)
    assert body == {"error": "request entity too large",
                    "detail": "the request body is larger than 1000 bytes"}
    # the same app still answers a request under the limit
    small = app.test_client().post(PV, json={"hook": "patient-view"})
    _assert_error(small, 400, "hookInstance")


# --- never a 5xx ------------------------------------------------------------------------------

def _every_bad_request(load_fixture) -> list[tuple[str, str, bytes, str]]:
    """(name, url, data, content type) of every bad request above."""
    out = [(f"raw:{name}", PV, data, ctype) for name, (data, ctype, *_) in RAW_BODIES.items()]
    for name, (mutate, *_) in PV_CASES.items():
        body = _mutated(load_fixture, PV_FIXTURE, mutate)
        out.append((f"pv:{name}", PV, json.dumps(body).encode(), "application/json"))
    for name, (mutate, *_) in OS_CASES.items():
        body = _mutated(load_fixture, OS_FIXTURE, mutate)
        out.append((f"os:{name}", OS, json.dumps(body).encode(), "application/json"))
    pv = json.dumps(load_fixture(PV_FIXTURE))
    out += [
        ("nan-value", PV, pv.replace('"value": 150', '"value": NaN').encode(), "application/json"),
        ("infinite-value", PV, pv.replace('"value": 150', '"value": 1e400').encode(),
         "application/json"),
        ("unknown-service", "/cds-services/nope", pv.encode(), "application/json"),
    ]
    assert all(b'"value": 150' not in data for name, _, data, _ in out[-3:-1]), "fixture changed"
    return out


def test_no_bad_input_produces_a_5xx(client, load_fixture):
    failures = []
    for name, url, data, content_type in _every_bad_request(load_fixture):
        response = client.post(url, data=data, content_type=content_type)
        body = response.get_json(silent=True)
        if response.status_code >= 500 or not (
            response.status_code >= 400 and isinstance(body, dict)
            and body.get("error") and body.get("detail")
        ):
            failures.append(f"{name}: {response.status_code} {response.get_data(as_text=True)}")
    assert failures == []


def test_a_valid_request_still_answers_after_bad_ones(client, load_fixture):
    for _, url, data, content_type in _every_bad_request(load_fixture)[:10]:
        client.post(url, data=data, content_type=content_type)
    response = client.post(PV, json=load_fixture(PV_FIXTURE))
    assert response.status_code == 200
    assert response.get_json()["cards"]
