"""Every fixture request in fhir_fixtures/ answers exactly its golden response."""

from __future__ import annotations

import json

import pytest

from tests.replay import fixture_paths, golden_path, replay_file

PATHS = fixture_paths()


def test_enough_fixtures():
    assert len(PATHS) >= 10


@pytest.mark.parametrize("path", PATHS, ids=[p.name.removesuffix(".json") for p in PATHS])
def test_fixture_matches_golden(path):
    golden = golden_path(path)
    assert golden.exists(), f"{golden.name} is missing"
    actual = replay_file(path)
    expected = json.loads(golden.read_text())
    assert expected["status"] < 500, f"{golden.name} records a server error"
    assert actual == expected, "actual response:\n" + json.dumps(actual, indent=2)


@pytest.mark.parametrize("path", PATHS, ids=[p.name.removesuffix(".json") for p in PATHS])
def test_card_shape_follows_spec(path):
    body = replay_file(path)["body"]
    for card in body["cards"]:
        assert len(card["summary"]) < 140
        assert card["indicator"] in {"info", "warning", "critical"}
        assert card["source"]["label"]
        assert card["uuid"]
        for suggestion in card.get("suggestions", []):
            assert suggestion["uuid"] and suggestion["label"] and suggestion["actions"]
            assert card["selectionBehavior"] in {"any", "at-most-one"}
    primary, *orders = body["cards"]
    assert set(primary["extension"]["b12cds.assessment"]) == {
        "phase", "cause", "contributors", "neurologic", "trend", "evidence", "rules",
        "monitoring"}
    assert all("b12cds.order" in card["extension"] for card in orders)
