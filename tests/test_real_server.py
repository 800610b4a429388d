"""The real server: `cds serve` (gunicorn) started as a process and called over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.replay import FIXTURE_CONFIG, FIXTURES

CDS = Path(sys.executable).parent / "cds"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, body: bytes | None = None, content_type: str = "application/json"):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def start_server(db: str) -> tuple[subprocess.Popen, str]:
    """`cds serve` (gunicorn, 2 workers) on a free loopback port, up and answering."""
    port = _free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "2",
           "CDS_NOW": FIXTURE_CONFIG["NOW"], "CDS_CARD_UUID_SEED": FIXTURE_CONFIG["CARD_UUID_SEED"],
           "CDS_DB": db}
    process = subprocess.Popen([str(CDS), "serve"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):  # up to ~30 s for gunicorn and its workers to come up
        try:
            if _request(f"{base}/healthz")[0] == 200:
                return process, base
        except OSError:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail("the server did not start: " + process.communicate(timeout=30)[1].decode())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process, base = start_server(str(tmp_path_factory.mktemp("db") / "cds.sqlite3"))
    try:
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        process.stderr.close()


def test_discovery_over_http(server):
    status, body = _request(f"{server}/cds-services")
    assert status == 200
    assert [s["id"] for s in body["services"]] == [
        "b12-patient-view", "b12-order-select", "b12-order-sign"]


@pytest.mark.parametrize("name", ["pv-pernicious-anemia-deficient", "os-metformin-deficient",
                                  "osign-gastrectomy-censored"])
def test_fixture_over_http_matches_golden(server, name):
    request = (FIXTURES / f"{name}.json").read_bytes()
    golden = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    hook = json.loads(request)["hook"]
    assert _request(f"{server}/cds-services/b12-{hook}", request) == (
        golden["status"], golden["body"])


def test_bad_request_over_http_is_json(server):
    status, body = _request(f"{server}/cds-services/b12-patient-view", b"[1, 2]")
    assert status == 400
    assert body == {"error": "bad request", "field": "body",
                    "detail": "the request body must be a JSON object, not an array"}
    status, body = _request(f"{server}/cds-services/b12-patient-view", b"{}", "text/plain")
    assert (status, body["field"]) == (415, "Content-Type")


def test_the_server_survives_bad_requests(server):
    for data in (b"[]", b"null", b"{oops", b"[" * 50_000 + b"]" * 50_000):
        status, body = _request(f"{server}/cds-services/b12-patient-view", data)
        assert (status, body["field"]) == (400, "body")
    request = (FIXTURES / "pv-no-labs.json").read_bytes()
    status, body = _request(f"{server}/cds-services/b12-patient-view", request)
    assert status == 200
    assert body["cards"][0]["extension"]["b12cds.assessment"]["phase"] == "insufficient-data"
