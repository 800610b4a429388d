"""Replay a fixture hook request through the Flask test client, as the goldens were made."""

from __future__ import annotations

import json
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask

from cds import create_app

FIXTURES = Path(__file__).resolve().parent.parent / "fhir_fixtures"
#: Fixed "now" and card-uuid seed, so that dates and uuids in the goldens are deterministic.
FIXTURE_CONFIG = {"NOW": "2026-06-01", "CARD_UUID_SEED": "fixtures", "REGIMEN": "us",
                  "DB": str(Path(tempfile.mkdtemp(prefix="b12cds-")) / "cds.sqlite3")}


@cache
def fixture_app() -> Flask:
    return create_app(FIXTURE_CONFIG)


def fixture_paths() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*.json") if not p.name.endswith(".expected.json"))


def golden_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".json") + ".expected.json")


def replay_file(path: Path) -> dict[str, Any]:
    """POST the request in `path` to the service for its hook; return status and body."""
    body = json.loads(path.read_text())
    response = fixture_app().test_client().post(f"/cds-services/b12-{body['hook']}", json=body)
    return {"status": response.status_code, "body": response.get_json()}
