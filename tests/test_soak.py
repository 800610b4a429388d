"""Engine soak through the app: 5,000 evaluations of distinct patients on 4 threads at once,
each answer matching its fixture's golden assessment (durable-rules sessions never leak; see
`make soak` for 100,000 with memory figures)."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

from tests.replay import fixture_app, fixture_paths, golden_path

EVALUATIONS = 5_000
THREADS = 4
_PATIENT = re.compile(r"(?<![A-Za-z0-9])p\d\d(?![0-9])")


def _cases() -> list[tuple[str, str, dict]]:
    """(service, request template with the patient id as {pid}, expected assessment)."""
    cases = []
    for path in fixture_paths():
        golden = json.loads(golden_path(path).read_text())
        if golden["status"] != 200:
            continue
        text = path.read_text().replace("{", "{{").replace("}", "}}")
        template = _PATIENT.sub("{pid}", text)
        assessment = golden["body"]["cards"][0]["extension"]["b12cds.assessment"]
        service = f"b12-{json.loads(path.read_text())['hook']}"
        cases.append((service, template, assessment))
    return cases


def test_soak_distinct_patients_on_four_threads():
    app = fixture_app()
    cases = _cases()

    def one(n: int) -> str | None:
        service, template, expected = cases[n % len(cases)]
        pid = f"soak{n:05d}"
        body = json.loads(template.format(pid=pid))
        response = app.test_client().post(f"/cds-services/{service}", json=body)
        if response.status_code != 200:
            return f"{n}: HTTP {response.status_code} {response.get_data(as_text=True)[:200]}"
        got = response.get_json()["cards"][0]["extension"]["b12cds.assessment"]
        refs = [ref.replace(pid, "PID") for ref in got["evidence"]]
        want = [ref for ref in (_PATIENT.sub("PID", r) for r in expected["evidence"])]
        same = (got["phase"], got["cause"], got["rules"]) == (
            expected["phase"], expected["cause"], expected["rules"])
        return None if same and refs == want else f"{n}: {got} != {expected}"

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        problems = [p for p in pool.map(one, range(EVALUATIONS)) if p]
    assert problems == []
