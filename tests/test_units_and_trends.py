"""Unit conversion and trend classification at their thresholds, and the regimen profiles."""

from __future__ import annotations

import copy
import json

import pytest

from cds import create_app, rulebook
from cds.config import BUNDLED_RULES
from cds.engine import Engine
from cds.errors import RuleFileError
from tests.replay import FIXTURE_CONFIG

BOOK = rulebook.load(BUNDLED_RULES)


@pytest.fixture(scope="module")
def engine():
    return Engine(BOOK)


@pytest.mark.parametrize(
    ("test", "value", "unit", "expected"),
    [
        ("serum-b12", 150, "pg/mL", 150),
        ("serum-b12", 150, "ng/L", 150),
        ("serum-b12", 100, "pmol/L", 135.5),
        ("serum-b12", 133, "pmol/l", 180.215),  # case folded
        ("mma", 450, "nmol/L", 0.45),
        ("mma", 0.45, "µmol/L", 0.45),  # micro sign folded
        ("hemoglobin", 12.5, "g/dL", 125),
        ("hemoglobin", 125, "g/L", 125),
        ("hemoglobin", 8.0, "mmol/L", 128.912),
        ("mcv", 101, "fL", 101),
    ],
)
def test_unit_conversion_to_canonical(test, value, unit, expected):
    assert BOOK.units[test].to_canonical(value, unit) == pytest.approx(expected)


@pytest.mark.parametrize(("test", "unit"), [("serum-b12", "mg/dL"), ("mma", "mg/L"),
                                            ("hemoglobin", "%"), ("serum-b12", "")])
def test_unknown_unit_is_never_guessed(test, unit):
    assert BOOK.units[test].to_canonical(100, unit) is None


def _patient() -> dict:
    return {"type": "patient", "age_years": 60, "sex": "female"}


def _treatment() -> dict:
    return {"type": "treatment", "doses": 0, "prior_course": False, "active_order": False}


def _series(test: str, baseline: float, latest: float) -> dict:
    return {"type": "series", "test": test, "count": 2, "baseline": baseline, "latest": latest,
            "change_pct": round((latest - baseline) / baseline * 100, 2),
            "since_treatment": False, "ref": f"Observation/{test}-2"}


@pytest.mark.parametrize(
    ("baseline", "latest", "expected"),
    [
        (100, 108.7, "improving"),  # +8.70%: at the reference change value
        (100, 108.6, "stable"),  # +8.60%: within noise
        (100, 91.3, "worsening"),  # -8.70%
        (100, 91.4, "stable"),  # -8.60%
        (100, 100, "stable"),
    ],
)
def test_hb_trend_at_reference_change_value(engine, baseline, latest, expected):
    result = engine.evaluate([_patient(), _treatment(), _series("hemoglobin", baseline, latest)])
    assert result.slots["hb_trend"] == expected
    assert result.slots["trend"] == expected


@pytest.mark.parametrize(
    ("baseline", "latest", "expected"),
    [
        (110, 106.26, "improving"),  # -3.40% from a raised MCV
        (110, 106.3, "stable"),  # -3.36%
        (97, 100.3, "worsening"),  # +3.40% to above 100 fL
        (95, 98.3, None),  # +3.47% but still <= 100 fL: not called worsening
        (95, 91.0, None),  # a fall from a normal MCV is not B12 improvement
    ],
)
def test_mcv_trend_at_reference_change_value(engine, baseline, latest, expected):
    result = engine.evaluate([_patient(), _treatment(), _series("mcv", baseline, latest)])
    assert result.slots.get("mcv_trend") == expected


def test_worst_series_sets_the_overall_trend(engine):
    facts = [_patient(), _treatment(), _series("hemoglobin", 100, 120),
             _series("mcv", 95, 104)]
    result = engine.evaluate(facts)
    assert (result.slots["hb_trend"], result.slots["mcv_trend"]) == ("improving", "worsening")
    assert result.slots["trend"] == "worsening"


def _nice_call(load_fixture, name: str) -> dict:
    app = create_app({**FIXTURE_CONFIG, "REGIMEN": "nice"})
    body = copy.deepcopy(load_fixture(name))
    response = app.test_client().post(f"/cds-services/b12-{body['hook']}", json=body)
    assert response.status_code == 200
    return response.get_json()["cards"][0]


def test_nice_profile_standard_regimen(load_fixture):
    card = _nice_call(load_fixture, "pv-pernicious-anemia-deficient")
    assert card["summary"] == (
        "B12 repletion (loading): 1 mg IM 3x/week for 2 weeks, then every 2-3 months")
    assert "hydroxocobalamin 1 mg IM three times a week for 2 weeks" in card["detail"]
    assert card["source"]["label"] == "b12-cds: Hydroxocobalamin (BNF / NICE NG239)"


def test_nice_profile_neuro_loading_is_open_ended(load_fixture):
    card = _nice_call(load_fixture, "pv-neuro-loading-under-way-not-critical")
    assessment = card["extension"]["b12cds.assessment"]
    assert assessment["phase"] == "repletion"
    assert card["summary"] == ("B12 repletion (loading), 5 doses given: 1 mg IM alternate days "
                               "until no further improvement, then every 2 months")


def test_nice_profile_loading_complete_after_six_doses(load_fixture):
    # 3 doses in the us profile is loading under way; under nice, 6 doses complete loading.
    body = load_fixture("pv-loading-under-way")
    doses = body["prefetch"]["medicationAdministrations"]["entry"]
    for n, day in enumerate(["2026-05-25", "2026-05-26", "2026-05-27"], start=4):
        extra = copy.deepcopy(doses[0])
        extra["resource"]["id"] = f"p11-dose-{n}"
        extra["resource"]["effectiveDateTime"] = day
        doses.append(extra)
    app = create_app({**FIXTURE_CONFIG, "REGIMEN": "nice"})
    response = app.test_client().post("/cds-services/b12-patient-view", json=body)
    card = response.get_json()["cards"][0]
    assert card["extension"]["b12cds.assessment"]["phase"] == "maintenance"
    assert card["summary"] == "B12 maintenance: 1 mg IM every 2-3 months"


def test_unknown_regimen_profile_stops_start_up():
    with pytest.raises(RuleFileError, match="CDS_REGIMEN 'uk' is not one of"):
        create_app({**FIXTURE_CONFIG, "REGIMEN": "uk"})


def test_a_value_too_large_for_a_float_is_ignored_not_guessed(client, load_fixture):
    body = load_fixture("pv-pernicious-anemia-deficient")
    raw = json.dumps(body).replace('"value": 150', '"value": 1' + "0" * 400)
    response = client.post("/cds-services/b12-patient-view", data=raw,
                           content_type="application/json")
    card = response.get_json()["cards"][0]
    assert card["extension"]["b12cds.assessment"]["phase"] == "insufficient-data"
    assert ("- Observation/p01-b12 (serum-b12): ignored, value 1.000e+400 is not a finite "
            "number") in card["detail"]


def test_an_instant_ahead_in_time_zone_is_dated_in_utc_not_the_future(client, load_fixture):
    body = load_fixture("pv-pernicious-anemia-deficient")
    body["prefetch"]["labs"]["entry"][0]["resource"]["effectiveDateTime"] = (
        "2026-06-02T05:00:00+14:00")  # 2026-06-01T15:00Z: already past on 2026-06-01
    card = client.post("/cds-services/b12-patient-view", json=body).get_json()["cards"][0]
    assert card["extension"]["b12cds.assessment"]["phase"] == "repletion"
    assert "Serum B12 150 pg/mL on 2026-06-01: deficient" in card["detail"]
