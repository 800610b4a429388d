"""Mutation fuzz of valid hook requests: whatever is sent, the answer is never a 5xx, and every
answer is either cards or a named JSON error."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.replay import fixture_app, fixture_paths

REQUESTS = [json.loads(p.read_text()) for p in fixture_paths()]
JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False),
    st.text(max_size=12), st.just(""), st.just([]), st.just({}),
    st.just({"resourceType": "Bundle"}), st.just({"resourceType": "Observation"}),
    st.just("Patient/other"), st.just("2026-13-45"), st.just({"value": "abc"}),
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a node inside a JSON document."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, path: tuple, how: str, junk: Any) -> Any:
    if not path:
        return junk
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "delete" and isinstance(parent, dict):
        del parent[last]
    elif how == "wrap":
        parent[last] = [parent[last]]
    elif how == "unwrap" and isinstance(parent[last], list) and parent[last]:
        parent[last] = parent[last][0]
    else:
        parent[last] = junk
    return doc


@st.composite
def mutated_requests(draw: st.DrawFn) -> tuple[str, Any]:
    body = copy.deepcopy(draw(st.sampled_from(REQUESTS)))
    service = f"b12-{body['hook']}"
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(body)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["replace", "delete", "wrap", "unwrap"]))
        body = _mutate(body, path, how, copy.deepcopy(draw(JUNK)))
    return service, body


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_requests())
def test_mutated_requests_never_get_a_5xx(case):
    service, body = case
    response = fixture_app().test_client().post(
        f"/cds-services/{service}", data=json.dumps(body), content_type="application/json")
    assert response.status_code < 500, response.get_data(as_text=True)
    answer = response.get_json()
    if response.status_code == 200:
        assert isinstance(answer["cards"], list) and answer["cards"]
        assert all(len(card["summary"]) < 140 for card in answer["cards"])
    else:
        assert response.status_code in {400, 404, 412, 413, 415}
        assert answer["error"] and answer["detail"]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_get_a_5xx(data):
    response = fixture_app().test_client().post(
        "/cds-services/b12-patient-view", data=data, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["field"] == "body"
