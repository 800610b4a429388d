"""Feedback: validation, round trip through HTTP and the CLI, and durability across kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from cds import create_app
from tests.replay import FIXTURE_CONFIG, FIXTURES
from tests.test_real_server import _request, start_server

CDS = Path(sys.executable).parent / "cds"
URL = "/cds-services/b12-order-select/feedback"


@pytest.fixture()
def db(tmp_path) -> str:
    return str(tmp_path / "var" / "feedback.sqlite3")


@pytest.fixture()
def app_client(db):
    return create_app({**FIXTURE_CONFIG, "DB": db}).test_client()


def _issue_cards(client) -> list[dict]:
    body = json.loads((FIXTURES / "os-metformin-deficient.json").read_text())
    return client.post("/cds-services/b12-order-select", json=body).get_json()["cards"]


def _cli(db: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CDS), "feedback", *args], env={**os.environ, "CDS_DB": db},
                          capture_output=True, text=True, timeout=60)


def test_feedback_round_trip_through_http_and_cli(app_client, db):
    assessment, order = _issue_cards(app_client)
    update_id = order["suggestions"][0]["uuid"]
    body = {"feedback": [
        {"card": order["uuid"], "outcome": "accepted",
         "acceptedSuggestions": [{"id": update_id}], "outcomeTimestamp": "2026-06-01T10:15:00Z"},
        {"card": assessment["uuid"], "outcome": "overridden",
         "overrideReason": {"reason": {"code": "specialist-advice",
                                       "system": "urn:b12-cds:override-reason"},
                            "userComment": "haematology says otherwise"},
         "outcomeTimestamp": "2026-06-01T10:16:00+01:00"},
        {"card": "never-issued-card", "outcome": "overridden",
         "overrideReason": {"reason": {"code": "other"}},  # a code without display: tolerated
         "outcomeTimestamp": "2026-06-01T10:17:00Z"},
    ]}
    response = app_client.post(URL, json=body)
    assert response.status_code == 200
    assert response.get_json() == {"stored": 3, "unknownCards": ["never-issued-card"]}

    listed = _cli(db, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["card"], r["outcome"], r["known_card"]) for r in rows] == [
        (order["uuid"], "accepted", True), (assessment["uuid"], "overridden", True),
        ("never-issued-card", "overridden", False)]
    assert rows[0]["accepted_suggestions"] == [update_id]
    assert rows[0]["card_rules"] == ["order-too-infrequent-for-repletion",
                                     "order-schedule-from-text"]
    assert rows[1]["card_phase"] == "repletion"
    assert (rows[1]["override_code"], rows[1]["has_comment"]) == ("specialist-advice", True)
    assert rows[1]["outcome_timestamp"] == "2026-06-01T10:16:00+01:00"
    assert "haematology" not in listed.stdout  # free text is not stored
    assert "p13" not in listed.stdout  # nor patient identifiers

    text = _cli(db, "list")
    assert "[unknown card]" in text.stdout and "reason=specialist-advice" in text.stdout

    stats = _cli(db, "stats")
    assert stats.returncode == 0
    line = next(ln for ln in stats.stdout.splitlines()
                if ln.startswith("order-too-infrequent-for-repletion "))
    assert line.split()[1:6] == ["1", "1", "1", "0", "100%/0%"]
    line = next(ln for ln in stats.stdout.splitlines() if ln.startswith("cause-metformin "))
    assert line.split()[1:6] == ["1", "1", "0", "1", "0%/100%"]


@pytest.mark.parametrize(("body", "field", "detail"), [
    ([], "body", "must be a JSON object"),
    ({}, "feedback", "'feedback' must be a non-empty array"),
    ({"feedback": []}, "feedback", "non-empty array"),
    ({"feedback": ["x"]}, "feedback[0]", "must be an object"),
    ({"feedback": [{"outcome": "accepted", "outcomeTimestamp": "2026-06-01T10:00:00Z"}]},
     "feedback[0].card", "uuid of a card"),
    ({"feedback": [{"card": "c", "outcome": "ignored", "outcomeTimestamp":
                    "2026-06-01T10:00:00Z"}]}, "feedback[0].outcome", "not 'ignored'"),
    ({"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "yesterday"}]},
     "feedback[0].outcomeTimestamp", "ISO 8601 instant"),
    ({"feedback": [{"card": "c", "outcome": "accepted",
                    "outcomeTimestamp": "2026-06-01T10:00:00"}]},
     "feedback[0].outcomeTimestamp", "with a time zone"),
    ({"feedback": [{"card": "c", "outcome": "accepted", "acceptedSuggestions": ["x"],
                    "outcomeTimestamp": "2026-06-01T10:00:00Z"}]},
     "feedback[0].acceptedSuggestions", "array of"),
    ({"feedback": [{"card": "c", "outcome": "overridden", "overrideReason": {"reason": "x"},
                    "outcomeTimestamp": "2026-06-01T10:00:00Z"}]},
     "feedback[0].overrideReason.reason", "Coding with a code"),
])
def test_bad_feedback_is_400_naming_the_field(app_client, body, field, detail):
    response = app_client.post(URL, json=body)
    assert response.status_code == 400
    assert response.get_json()["field"] == field
    assert detail in response.get_json()["detail"]


def test_feedback_to_an_unknown_service_is_404(app_client):
    response = app_client.post("/cds-services/nope/feedback", json={"feedback": []})
    assert response.status_code == 404


def test_acknowledged_feedback_survives_kill_9(tmp_path, db):
    process, base = start_server(db)
    try:
        request = (FIXTURES / "os-metformin-deficient.json").read_bytes()
        status, body = _request(f"{base}/cds-services/b12-order-select", request)
        assert status == 200
        cards = [c["uuid"] for c in body["cards"]]
        acknowledged = []
        for n in range(20):
            item = {"card": cards[n % 2], "outcome": "accepted",
                    "outcomeTimestamp": f"2026-06-01T10:{n:02d}:00Z"}
            payload = json.dumps({"feedback": [item]}).encode()
            status, _ = _request(f"{base}/cds-services/b12-order-select/feedback", payload)
            assert status == 200
            acknowledged.append(item["outcomeTimestamp"])
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # no shutdown, no flush
        process.wait(timeout=30)
        process.stderr.close()
    with pytest.raises(OSError):  # the server is gone
        urllib.request.urlopen(f"{base}/healthz", timeout=2)
    rows = json.loads(_cli(db, "list", "--json").stdout)
    stored = [r["outcome_timestamp"].replace("+00:00", "Z") for r in rows]
    assert stored == acknowledged
    assert all(r["known_card"] for r in rows)
