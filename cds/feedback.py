"""CDS Hooks feedback: validation, and the SQLite store of issued cards and their feedback.

The store holds no patient identifiers and no clinical values: per card its uuid, service, kind,
phase and rule ids; per feedback the outcome, accepted suggestion ids, the override reason code,
whether a comment was given (not the comment: free text may name the patient) and timestamps.
WAL mode; feedback is committed with `synchronous=FULL` before the 200 is sent, so an acknowledged
feedback survives a crash of the server process.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cds.errors import BadRequest

OUTCOMES = ("accepted", "overridden")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cards (
    uuid TEXT PRIMARY KEY, service TEXT NOT NULL, kind TEXT NOT NULL, phase TEXT,
    rules TEXT NOT NULL, issued_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, card TEXT NOT NULL, service TEXT NOT NULL,
    outcome TEXT NOT NULL, accepted_suggestions TEXT NOT NULL, override_system TEXT,
    override_code TEXT, has_comment INTEGER NOT NULL, outcome_timestamp TEXT NOT NULL,
    received_at TEXT NOT NULL, known_card INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS feedback_card ON feedback(card);
"""


@dataclass(frozen=True)
class Feedback:
    card: str
    outcome: str
    accepted_suggestions: tuple[str, ...]
    override_system: str | None
    override_code: str | None
    has_comment: bool
    outcome_timestamp: str


def parse(body: Any) -> list[Feedback]:
    """Validate a feedback request body; BadRequest names the offending field."""
    if not isinstance(body, dict):
        raise BadRequest("the feedback body must be a JSON object", field="body")
    items = body.get("feedback")
    if not isinstance(items, list) or not items:
        raise BadRequest("'feedback' must be a non-empty array", field="feedback")
    return [_item(item, f"feedback[{i}]") for i, item in enumerate(items)]


def _item(item: Any, where: str) -> Feedback:
    if not isinstance(item, dict):
        raise BadRequest(f"'{where}' must be an object", field=where)
    card = item.get("card")
    if not isinstance(card, str) or not card.strip():
        raise BadRequest(f"'{where}.card' must be the uuid of a card", field=f"{where}.card")
    outcome = item.get("outcome")
    if outcome not in OUTCOMES:
        raise BadRequest(f"'{where}.outcome' must be one of {list(OUTCOMES)}, not {outcome!r}",
                         field=f"{where}.outcome")
    stamp = item.get("outcomeTimestamp")
    if not isinstance(stamp, str) or _instant(stamp) is None:
        raise BadRequest(f"'{where}.outcomeTimestamp' must be an ISO 8601 instant with a time "
                         "zone, e.g. 2026-06-01T10:15:00Z", field=f"{where}.outcomeTimestamp")
    accepted = item.get("acceptedSuggestions", [])
    if not isinstance(accepted, list) or not all(
        isinstance(a, dict) and isinstance(a.get("id"), str) for a in accepted
    ):
        raise BadRequest(f"'{where}.acceptedSuggestions' must be an array of {{\"id\": uuid}}",
                         field=f"{where}.acceptedSuggestions")
    reason = item.get("overrideReason")
    system = code = None
    has_comment = False
    if reason is not None:
        if not isinstance(reason, dict):
            raise BadRequest(f"'{where}.overrideReason' must be an object",
                             field=f"{where}.overrideReason")
        coding = reason.get("reason")
        if coding is not None and (not isinstance(coding, dict)
                                   or not isinstance(coding.get("code"), str)):
            raise BadRequest(f"'{where}.overrideReason.reason' must be a Coding with a code",
                             field=f"{where}.overrideReason.reason")
        if coding:
            system = coding.get("system") if isinstance(coding.get("system"), str) else None
            code = coding["code"]
        has_comment = isinstance(reason.get("userComment"), str) and bool(reason["userComment"])
    return Feedback(card.strip(), outcome, tuple(a["id"] for a in accepted), system, code,
                    has_comment, _instant(stamp).isoformat())


def _instant(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


class Store:
    """SQLite store at `path`, created on first use; safe across threads and processes."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._ready = False
        self._lock = threading.Lock()

    @contextmanager
    def _connect(self, synchronous: str = "NORMAL") -> Iterator[sqlite3.Connection]:
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with sqlite3.connect(self.path, timeout=10) as db:
                        db.execute("PRAGMA journal_mode=WAL")
                        db.executescript(_SCHEMA)
                    self._ready = True
        db = sqlite3.connect(self.path, timeout=10)
        try:
            db.execute(f"PRAGMA synchronous={synchronous}")
            with db:
                yield db
        finally:
            db.close()

    def record_cards(self, service: str, cards: list[Mapping[str, Any]]) -> None:
        """Remember what each issued card said (rule ids, phase), for feedback statistics."""
        now = _now()
        rows = []
        for card in cards:
            ((kind, ext),) = card["extension"].items()
            rows.append((card["uuid"], service, kind, ext.get("phase"),
                         json.dumps(ext.get("rules", [])), now))
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO cards VALUES (?, ?, ?, ?, ?, ?)", rows)

    def record_feedback(self, service: str, items: list[Feedback]) -> list[str]:
        """Store feedback durably; return the card uuids this service never issued."""
        now = _now()
        with self._connect("FULL") as db:
            known = {row[0] for row in db.execute(
                f"SELECT uuid FROM cards WHERE uuid IN ({','.join('?' * len(items))})",
                [f.card for f in items])}
            db.executemany(
                "INSERT INTO feedback (card, service, outcome, accepted_suggestions, "
                "override_system, override_code, has_comment, outcome_timestamp, received_at, "
                "known_card) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(f.card, service, f.outcome, json.dumps(list(f.accepted_suggestions)),
                  f.override_system, f.override_code, int(f.has_comment), f.outcome_timestamp,
                  now, int(f.card in known)) for f in items])
        return list(dict.fromkeys(f.card for f in items if f.card not in known))

    def feedback(self) -> list[dict[str, Any]]:
        """Every stored feedback with what its card said, oldest first."""
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT f.*, c.phase AS card_phase, c.rules AS card_rules FROM feedback f "
                "LEFT JOIN cards c ON c.uuid = f.card ORDER BY f.id").fetchall()
        return [{**dict(r), "accepted_suggestions": json.loads(r["accepted_suggestions"]),
                 "card_rules": json.loads(r["card_rules"]) if r["card_rules"] else None,
                 "known_card": bool(r["known_card"]), "has_comment": bool(r["has_comment"])}
                for r in rows]

    def stats(self) -> list[dict[str, Any]]:
        """Per rule: cards issued, feedback received, acceptance and override rates."""
        with self._connect() as db:
            cards = db.execute("SELECT uuid, rules FROM cards").fetchall()
            feedback = db.execute("SELECT card, outcome FROM feedback").fetchall()
        rules_of = {uuid: json.loads(rules) for uuid, rules in cards}
        table: dict[str, dict[str, int]] = {}
        for rules in rules_of.values():
            for rule in rules:
                table.setdefault(rule, {"cards": 0, "accepted": 0, "overridden": 0})["cards"] += 1
        for card, outcome in feedback:
            for rule in rules_of.get(card, []):
                table[rule][outcome] += 1
        out = []
        for rule, counts in sorted(table.items()):
            answered = counts["accepted"] + counts["overridden"]
            out.append({"rule": rule, **counts, "feedback": answered,
                        "acceptance_rate": round(counts["accepted"] / answered, 3)
                        if answered else None,
                        "override_rate": round(counts["overridden"] / answered, 3)
                        if answered else None})
        return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
