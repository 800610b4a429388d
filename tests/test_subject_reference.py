"""A resource's subject may name the context patient with a version (`Patient/p01/_history/2`);
it is the same patient, so the request is answered. Another patient is still refused."""

from __future__ import annotations

import copy

import pytest

PV = "/cds-services/b12-patient-view"
PV_FIXTURE = "pv-pernicious-anemia-deficient"  # patient p01, lab Observation/p01-b12


def _with_lab_subject(load_fixture, reference: str) -> dict:
    body = copy.deepcopy(load_fixture(PV_FIXTURE))
    lab = body["prefetch"]["labs"]["entry"][0]["resource"]
    assert lab["subject"] == {"reference": "Patient/p01"}, "fixture changed"
    lab["subject"] = {"reference": reference}
    return body


def _summaries(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [card["summary"] for card in response.get_json()["cards"]]


@pytest.mark.parametrize("reference", [
    "Patient/p01/_history/2",
    "https://ehr.example.org/fhir/Patient/p01/_history/7",
    "https://ehr.example.org/fhir/Patient/p01",
    "p01",
])
def test_references_to_the_context_patient_are_answered(client, load_fixture, reference):
    expected = _summaries(client.post(PV, json=load_fixture(PV_FIXTURE)))
    answer = client.post(PV, json=_with_lab_subject(load_fixture, reference))
    assert _summaries(answer) == expected


@pytest.mark.parametrize("reference", [
    "Patient/p99/_history/2",
    "https://ehr.example.org/fhir/Patient/p99/_history/1",
    "Patient/p010/_history/1",
    "Group/p01/_history/1",
    "Patient/p01/_history/2/extra",
])
def test_references_to_another_subject_are_refused(client, load_fixture, reference):
    response = client.post(PV, json=_with_lab_subject(load_fixture, reference))
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "bad request", "field": "prefetch.labs.entry[0]",
        "detail": f"prefetch.labs.entry[0]: Observation/p01-b12 belongs to {reference}, "
                  "not Patient/p01"}
