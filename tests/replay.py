"""The fixtures' replay settings and runner, shared by the tests (see `cds.replay`)."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask

from cds import create_app, replay

FIXTURES = Path(__file__).resolve().parent.parent / "fhir_fixtures"
#: The app settings the goldens' `replay` blocks record: fixed "now", card-uuid seed, regimen.
FIXTURE_CONFIG = {"NOW": replay.REPLAY_DEFAULTS["now"],
                  "CARD_UUID_SEED": replay.REPLAY_DEFAULTS["cardUuidSeed"],
                  "REGIMEN": replay.REPLAY_DEFAULTS["regimen"],
                  "DB": str(Path(tempfile.mkdtemp(prefix="b12cds-")) / "cds.sqlite3")}
golden_path = replay.golden_path


@cache
def fixture_app() -> Flask:
    return create_app(FIXTURE_CONFIG)


def fixture_paths() -> list[Path]:
    return replay.find_requests([FIXTURES])


def replay_file(path: Path) -> dict[str, Any]:
    """Replay the request in `path` as `cds replay` does: {"replay", "status", "body"}."""
    return replay.run(path).actual
