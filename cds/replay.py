"""Replay hook-request fixtures in-process and compare them with their goldens.

A fixture is `NAME.json` (the hook request) with `NAME.expected.json` beside it: the golden
`{"replay": {now, cardUuidSeed, regimen}, "status": ..., "body": ...}`. The `replay` block fixes
"today", the card-uuid seed and the regimen profile, so that a replay is deterministic; card and
suggestion uuids are still ignored when comparing (they are per-call values for a real client).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask

from cds.app import create_app

REPLAY_DEFAULTS = {"now": "2026-06-01", "cardUuidSeed": "fixtures", "regimen": "us"}
IGNORED_KEYS = frozenset({"uuid"})
_DB = Path(tempfile.gettempdir()) / "b12cds-replay.sqlite3"


class UnreadableFixture(Exception):
    """A request or golden file that is not JSON of the expected shape."""


@dataclass
class Result:
    name: str
    request: Path
    settings: dict[str, str]
    actual: dict[str, Any]
    golden: dict[str, Any] | None = None
    differences: list[str] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return self.golden is not None and not self.differences


def find_requests(paths: Iterable[str | Path]) -> list[Path]:
    """Request files named directly, or found under directories (goldens excluded)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.json")
                            if not p.name.endswith(".expected.json"))
        else:
            found.append(path)
    return found


def golden_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".json") + ".expected.json")


def settings_of(golden: Mapping[str, Any] | None) -> dict[str, str]:
    return {**REPLAY_DEFAULTS, **((golden or {}).get("replay") or {})}


@cache
def _app(now: str, seed: str, regimen: str) -> Flask:
    return create_app({"NOW": now, "CARD_UUID_SEED": seed, "REGIMEN": regimen, "DB": str(_DB)})


def app_for(settings: Mapping[str, str]) -> Flask:
    return _app(settings["now"], settings["cardUuidSeed"], settings["regimen"])


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnreadableFixture(f"{path}: {exc}") from exc


def run(path: Path) -> Result:
    """Replay one request through the Flask test client with its golden's settings."""
    request = _read(path)
    if not isinstance(request, dict) or not isinstance(request.get("hook"), str):
        raise UnreadableFixture(f"{path}: not a hook request (no 'hook')")
    golden_file = golden_path(path)
    golden = _read(golden_file) if golden_file.exists() else None
    if golden is not None and not isinstance(golden, dict):
        raise UnreadableFixture(f"{golden_file}: not a golden response object")
    settings = settings_of(golden)
    response = app_for(settings).test_client().post(f"/cds-services/b12-{request['hook']}",
                                                    json=request)
    actual = {"replay": settings, "status": response.status_code, "body": response.get_json()}
    result = Result(path.name.removesuffix(".json"), path, settings, actual, golden)
    if golden is not None:
        result.differences = differences(golden, actual)
    return result


def differences(expected: Any, actual: Any, path: str = "$") -> list[str]:
    """Each difference named by its JSON path; keys in IGNORED_KEYS are not compared."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual), key=str):
            if key in IGNORED_KEYS:
                continue
            where = f"{path}.{key}"
            if key not in actual:
                out.append(f"{where}: missing (expected {_short(expected[key])})")
            elif key not in expected:
                out.append(f"{where}: unexpected {_short(actual[key])}")
            else:
                out += differences(expected[key], actual[key], where)
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        out = [d for i, (e, a) in enumerate(zip(expected, actual, strict=False))
               for d in differences(e, a, f"{path}[{i}]")]
        if len(expected) != len(actual):
            out.append(f"{path}: {len(actual)} items, expected {len(expected)}")
        return out
    return [] if expected == actual else [
        f"{path}: expected {_short(expected)}, got {_short(actual)}"]


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def describe(result: Result) -> list[str]:
    """The response as a tester reads it: each card's summary and key facts."""
    lines = [f"{result.name}  (HTTP {result.actual['status']})"]
    body = result.actual["body"] or {}
    if "cards" not in body:
        return [*lines, f"  error: {body.get('error')}: {body.get('detail')}"]
    for card in body["cards"]:
        lines.append(f"  [{card['indicator']}] {card['summary']}")
        assessment = card.get("extension", {}).get("b12cds.assessment")
        if assessment:
            lines.append(f"      phase={assessment['phase']} cause={assessment['cause']} "
                         f"neuro={str(assessment['neurologic']).lower()} "
                         f"trend={assessment['trend']}")
        order = card.get("extension", {}).get("b12cds.order")
        if order:
            lines.append(f"      order={order['order']} verdict={order['verdict']}")
        for suggestion in card.get("suggestions", []):
            kinds = ", ".join(a["type"] for a in suggestion["actions"])
            lines.append(f"      suggestion: {suggestion['label']} ({kinds})")
    return lines


def write_golden(result: Result) -> None:
    golden_path(result.request).write_text(json.dumps(result.actual, indent=2) + "\n")
