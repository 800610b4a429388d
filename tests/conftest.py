from __future__ import annotations

import json
from pathlib import Path

import pytest

from cds import create_app
from tests.replay import FIXTURE_CONFIG, FIXTURES


@pytest.fixture(scope="session")
def app():
    return create_app(FIXTURE_CONFIG)


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def load_fixture():
    def load(name: str) -> dict:
        return json.loads(Path(FIXTURES, f"{name}.json").read_text())

    return load
