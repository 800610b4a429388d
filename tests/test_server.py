"""The real server: `cds serve` (gunicorn, one worker) as a subprocess, called with urllib only."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cds import replay
from tests.replay import FIXTURES, golden_path

CDS = Path(sys.executable).parent / "cds"
NOW, SEED = "2026-06-01", "fixtures"
FIXTURE = FIXTURES / "pv-pernicious-anemia-deficient.json"
STARTUP_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url: str, data: bytes | None = None, content_type: str = "application/json",
          timeout: float = 10.0) -> tuple[int, str, Any]:
    """(status, Content-Type, decoded JSON body) of one request; HTTP errors are answers too."""
    headers = {"Content-Type": content_type} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers.get_content_type(), json.loads(
                response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers.get_content_type(), json.loads(exc.read())


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group (gunicorn master and workers); SIGKILL if it lingers."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # workers left by a master that died first
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("server")
    port = _free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1",
           "CDS_NOW": NOW, "CDS_CARD_UUID_SEED": SEED, "CDS_DB": str(workdir / "cds.sqlite3")}
    for name in ("CDS_RULES_DIR", "CDS_REGIMEN", "CDS_AUTH_REQUIRED", "CDS_MAX_BODY_BYTES"):
        env.pop(name, None)
    log_path = workdir / "server.log"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen([str(CDS), "serve"], env=env, cwd=workdir,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"cds serve exited with {process.returncode}:\n"
                            f"{log_path.read_text(errors='replace')}")
            try:
                if _call(f"{base}/cds-services", timeout=2)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"cds serve did not answer within {STARTUP_SECONDS:.0f} s:\n"
                            f"{log_path.read_text(errors='replace')}")
            time.sleep(0.25)
        yield base
    finally:
        _stop(process)


def test_discovery(server):
    status, content_type, body = _call(f"{server}/cds-services")
    assert (status, content_type) == (200, "application/json")
    assert [s["id"] for s in body["services"]] == [
        "b12-patient-view", "b12-order-select", "b12-order-sign"]


def test_fixture_answer_matches_its_golden(server):
    request = FIXTURE.read_bytes()
    golden = json.loads(golden_path(FIXTURE).read_text())
    assert golden["replay"] == {"now": NOW, "cardUuidSeed": SEED, "regimen": "us"}
    status, content_type, body = _call(f"{server}/cds-services/b12-patient-view", request)
    assert (status, content_type) == (golden["status"], "application/json") == (200,
                                                                               "application/json")
    assert body["cards"]
    # the goldens' own comparison: every key and value, card uuids aside
    assert replay.differences(golden["body"], body) == []
    # with CDS_CARD_UUID_SEED the card uuids are deterministic, so they match too
    assert [c["uuid"] for c in body["cards"]] == [c["uuid"] for c in golden["body"]["cards"]]


def test_bad_request_is_400_json(server):
    request = json.loads(FIXTURE.read_text())
    del request["context"]["patientId"]
    status, content_type, body = _call(f"{server}/cds-services/b12-patient-view",
                                       json.dumps(request).encode())
    assert (status, content_type) == (400, "application/json")
    assert body == {"error": "bad request", "detail": "'context.patientId' is required",
                    "field": "context.patientId"}


def test_not_json_is_400_json(server):
    status, content_type, body = _call(f"{server}/cds-services/b12-patient-view", b"{oops")
    assert (status, content_type) == (400, "application/json")
    assert body["field"] == "body"
    assert body["detail"].startswith("the request body is not valid JSON")


def test_the_server_survives_bad_requests(server):
    for data in (b"[]", b"null", b"[" * 50_000 + b"]" * 50_000):
        status, _, body = _call(f"{server}/cds-services/b12-patient-view", data)
        assert status == 400
        assert body["field"] == "body"
    status, _, body = _call(f"{server}/cds-services/b12-patient-view", FIXTURE.read_bytes())
    assert status == 200
    assert body["cards"]
