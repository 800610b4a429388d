"""CORS, the per-call log line, /healthz and /openapi.json."""

from __future__ import annotations

import json
import logging

from cds import create_app
from tests.replay import FIXTURE_CONFIG

SERVICE = "/cds-services/b12-patient-view"


def test_preflight_is_answered_for_any_origin_by_default(client):
    response = client.options(SERVICE, headers={
        "Origin": "https://ehr.example.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_configured_origins_only(load_fixture):
    app = create_app({**FIXTURE_CONFIG, "CORS_ORIGINS": "https://a.example, https://b.example"})
    client = app.test_client()
    allowed = client.post(SERVICE, json=load_fixture("pv-no-labs"),
                          headers={"Origin": "https://b.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://b.example"
    assert "Origin" in allowed.headers["Vary"]
    refused = client.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 200
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_one_json_log_line_per_call_without_patient_data(client, load_fixture, caplog):
    body = load_fixture("pv-pernicious-anemia-deficient")
    with caplog.at_level(logging.INFO, logger="cds.calls"):
        client.post(SERVICE, json=body)
        client.post(SERVICE, data="nope", content_type="application/json")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "cds.calls"]
    assert len(lines) == 2
    ok, bad = lines
    assert ok["hookInstance"] == body["hookInstance"]
    assert (ok["service"], ok["status"], ok["cards"]) == ("b12-patient-view", 200, 1)
    assert ok["rules"][:2] == ["b12-serum-deficient", "cause-pernicious-anemia"]
    assert isinstance(ok["duration_ms"], float)
    assert (bad["status"], bad["cards"], bad["rules"], bad["hookInstance"]) == (400, 0, [], None)
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "p01" not in text and "150" not in text


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert response.get_json()["rules"] > 50


def test_openapi_document_lists_every_route(client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {"/cds-services", "/cds-services/{id}",
                                 "/cds-services/{id}/feedback", "/healthz"}
    ids = doc["paths"]["/cds-services/{id}"]["post"]["parameters"][0]["schema"]["enum"]
    assert ids == ["b12-patient-view", "b12-order-select", "b12-order-sign"]
