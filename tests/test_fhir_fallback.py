"""FHIR-server fallback against a real HTTP FHIR endpoint on loopback (pytest-httpserver)."""

from __future__ import annotations

import copy
import json
import re
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cds import create_app
from tests.replay import FIXTURE_CONFIG, FIXTURES

TOKEN = "token-abc"
FIXTURE = "pv-pernicious-anemia-deficient"
#: prefetch key -> the resource type its query asks for
KEY_TYPES = {"patient": "Patient", "labs": "Observation", "conditions": "Condition",
             "medicationStatements": "MedicationStatement",
             "medicationRequests": "MedicationRequest",
             "medicationAdministrations": "MedicationAdministration", "procedures": "Procedure"}


def _fixture() -> tuple[dict, dict]:
    request = json.loads((FIXTURES / f"{FIXTURE}.json").read_text())
    golden = json.loads((FIXTURES / f"{FIXTURE}.expected.json").read_text())
    return request, golden


class FakeFhir:
    """Answers the service's prefetch queries from a fixture's prefetch."""

    def __init__(self, prefetch: dict) -> None:
        self.by_type = {KEY_TYPES[k]: v for k, v in prefetch.items()}
        self.broken: dict[str, Response] = {}
        self.page_size: int | None = None
        self.delay: dict[str, float] = {}
        self.seen: list[tuple[str, str | None]] = []

    def __call__(self, request: Request) -> Response:
        rtype = request.path.strip("/").split("/")[0]
        self.seen.append((request.full_path.rstrip("?"), request.headers.get("Authorization")))
        time.sleep(self.delay.get(rtype, 0))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Response("unauthorized", status=401)
        if rtype in self.broken:
            return self.broken[rtype]
        body = self.by_type.get(rtype)
        if body is None:
            return Response("not found", status=404)
        if body.get("resourceType") == "Bundle" and self.page_size:
            body = self._page(body, request)
        return Response(json.dumps(body), content_type="application/fhir+json")

    def _page(self, bundle: dict, request: Request) -> dict:
        page = int(request.args.get("_page", "0"))
        entries = bundle.get("entry", [])
        start = page * self.page_size
        out = {"resourceType": "Bundle", "type": "searchset",
               "entry": entries[start:start + self.page_size]}
        if start + self.page_size < len(entries):
            out["link"] = [{"relation": "next",
                            "url": request.url.split("?")[0] + f"?_page={page + 1}"}]
        return out


@pytest.fixture()
def fhir():
    """A threaded FHIR endpoint on loopback (a slow query must not hold up the others)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    request, _ = _fixture()
    fake = FakeFhir(request["prefetch"])
    server.expect_request(re.compile(".*")).respond_with_handler(fake)
    fake.base = server.url_for("/")
    yield fake
    server.clear()
    server.stop()


def _call(body: dict, **config) -> tuple[int, dict]:
    app = create_app({**FIXTURE_CONFIG, "FHIR_SERVERS": "http://127.0.0.1:", **config})
    response = app.test_client().post(f"/cds-services/b12-{body['hook']}", json=body)
    return response.status_code, response.get_json()


def _without_prefetch(fhir: FakeFhir, *, token: str | None = TOKEN, keep=()) -> dict:
    request, _ = _fixture()
    body = copy.deepcopy(request)
    body["prefetch"] = {k: v for k, v in body["prefetch"].items() if k in keep}
    body["fhirServer"] = fhir.base.rstrip("/")
    if token:
        body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer",
                                     "expires_in": 300, "scope": "patient/*.read",
                                     "subject": "cds-service"}
    return body


def _missing_lines(card: dict) -> list[str]:
    detail = card["detail"]
    if "**Missing data**" not in detail:
        return []
    block = detail.split("**Missing data**", 1)[1].split("\n\n", 1)[0]
    return [line[2:] for line in block.splitlines() if line.startswith("- ")]


def test_everything_fetched_gives_the_same_answer_as_prefetch(fhir):
    status, body = _call(_without_prefetch(fhir))
    assert (status, body) == (200, _fixture()[1]["body"])
    paths = {p.split("?")[0]: p for p, _ in fhir.seen}
    assert set(paths) == {"/Patient/p01", "/Observation", "/Condition", "/MedicationStatement",
                          "/MedicationRequest", "/MedicationAdministration", "/Procedure"}
    assert paths["/Observation"].startswith("/Observation?patient=p01&code=http://loinc.org")
    assert paths["/Condition"] == "/Condition?patient=p01"
    assert all(auth == f"Bearer {TOKEN}" for _, auth in fhir.seen)


def test_only_absent_or_null_keys_are_fetched(fhir):
    body = _without_prefetch(fhir, keep=("patient",))
    body["prefetch"]["labs"] = None
    status, answer = _call(body)
    assert status == 200
    assert answer == _fixture()[1]["body"]
    assert not any(p.startswith("/Patient") for p, _ in fhir.seen)
    assert any(p.startswith("/Observation") for p, _ in fhir.seen)


def test_bundle_paging_is_followed(fhir):
    request, _ = _fixture()
    fhir.by_type["Observation"] = copy.deepcopy(request["prefetch"]["labs"])
    extra = copy.deepcopy(fhir.by_type["Observation"]["entry"][0])
    extra["resource"]["id"] = "p01-b12-old"
    extra["resource"]["effectiveDateTime"] = "2026-01-10"
    extra["resource"]["valueQuantity"]["value"] = 160
    fhir.by_type["Observation"]["entry"].append(extra)
    fhir.page_size = 1
    status, body = _call(_without_prefetch(fhir))
    assert status == 200
    assert sum(p.startswith("/Observation") for p, _ in fhir.seen) == 2
    assessment = body["cards"][0]["extension"]["b12cds.assessment"]
    assert assessment["phase"] == "repletion"
    assert "Serum B12 150 pg/mL on 2026-05-10: deficient" in body["cards"][0]["detail"]


def test_paging_stops_at_the_bound(fhir):
    fhir.page_size = 1
    entry = fhir.by_type["Observation"]["entry"][0]
    fhir.by_type["Observation"]["entry"] = [entry] * 10
    status, _ = _call(_without_prefetch(fhir), FHIR_MAX_PAGES=3)
    assert status == 200
    assert sum(p.startswith("/Observation") for p, _ in fhir.seen) == 3


def test_slow_server_becomes_an_honest_gap(fhir):
    fhir.delay["Observation"] = 1.0
    status, body = _call(_without_prefetch(fhir), FHIR_TIMEOUT=0.3, FHIR_DEADLINE=0.8)
    card = body["cards"][0]
    assert status == 200
    assert _missing_lines(card) == ["labs: could not be read from the EHR (timed out)"]
    assert card["extension"]["b12cds.assessment"]["phase"] == "insufficient-data"
    assert card["summary"] == "Insufficient data for B12 dosing: order Serum vitamin B12"


def test_server_error_on_one_query_is_named_on_the_card(fhir):
    fhir.broken["Condition"] = Response("boom", status=500)
    status, body = _call(_without_prefetch(fhir))
    card = body["cards"][0]
    assert status == 200
    assert _missing_lines(card) == ["conditions: could not be read from the EHR (HTTP 500)"]
    assert card["extension"]["b12cds.assessment"]["cause"] == "unknown"
    assert card["extension"]["b12cds.assessment"]["phase"] == "repletion"


def test_non_fhir_body_is_a_gap(fhir):
    fhir.broken["Observation"] = Response("<html>login</html>", content_type="text/html")
    status, body = _call(_without_prefetch(fhir))
    assert status == 200
    assert _missing_lines(body["cards"][0]) == [
        "labs: could not be read from the EHR (the answer is not FHIR JSON)"]


def test_invalid_fhir_from_the_server_is_a_gap_not_a_400(fhir):
    bad = copy.deepcopy(fhir.by_type["Observation"])
    bad["entry"][0]["resource"]["valueQuantity"]["value"] = "abc"
    fhir.by_type["Observation"] = bad
    status, body = _call(_without_prefetch(fhir))
    assert status == 200
    (line,) = _missing_lines(body["cards"][0])
    assert line.startswith("labs: the EHR's FHIR server sent data that is not valid "
                           "(prefetch.labs.entry[0]: Observation/p01-b12 is not valid FHIR R4: "
                           "element 'valueQuantity.value'")


def test_unauthorized_everywhere_is_412(fhir):
    status, body = _call(_without_prefetch(fhir, token="wrong"))
    assert status == 412
    assert body["error"] == "precondition failed"
    assert body["field"] == "prefetch"
    assert "labs: could not be read from the EHR (HTTP 401)" in body["detail"]


def test_no_token_works_from_what_was_given(fhir):
    body = _without_prefetch(fhir, token=None, keep=("patient", "labs"))
    status, answer = _call(body)
    assert status == 200
    assert fhir.seen == []
    lines = _missing_lines(answer["cards"][0])
    assert lines[0] == ("conditions: not sent by the EHR, and no access token to ask its FHIR "
                        "server")
    assert len(lines) == 5


def test_paging_link_to_another_server_is_refused(fhir):
    fhir.by_type["Observation"] = {**fhir.by_type["Observation"], "link": [
        {"relation": "next", "url": "http://127.0.0.2:9/Observation?_page=1"}]}
    status, body = _call(_without_prefetch(fhir))
    assert status == 200
    assert _missing_lines(body["cards"][0]) == [
        "labs: could not be read from the EHR (a paging link leaves the FHIR server)"]


def test_nothing_sent_and_no_server_is_412():
    request, _ = _fixture()
    body = {k: v for k, v in request.items() if k != "prefetch"}
    status, answer = _call(body)
    assert status == 412
    assert answer["detail"].startswith(
        "no patient data could be obtained: patient: not sent by the EHR, and no fhirServer")


def test_a_server_not_allowed_is_never_contacted(fhir):
    body = _without_prefetch(fhir, keep=("patient", "labs"))
    status, answer = _call(body, FHIR_SERVERS="https://ehr.example.org/")
    assert status == 200
    assert fhir.seen == []  # no request, so the token never left the service
    assert _missing_lines(answer["cards"][0])[0] == (
        "conditions: not sent by the EHR, and its fhirServer is not one this service may "
        "contact (CDS_FHIR_SERVERS)")


def test_plain_http_is_not_contacted_by_default(fhir):
    body = _without_prefetch(fhir, keep=("patient", "labs"))
    app = create_app(FIXTURE_CONFIG)  # default CDS_FHIR_SERVERS: https:// only
    response = app.test_client().post("/cds-services/b12-patient-view", json=body)
    assert response.status_code == 200
    assert fhir.seen == []
