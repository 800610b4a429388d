"""CDS client JWT authentication (CDS_AUTH_REQUIRED=1)."""

from __future__ import annotations

import json
import re
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pytest_httpserver import HTTPServer

from cds import create_app
from cds.errors import ConfigError
from tests.replay import FIXTURE_CONFIG

EHR, SANDBOX, REMOTE = "https://ehr.example.org", "https://sandbox.cds-hooks.org", "https://r.example"
URL = "http://localhost/cds-services/b12-patient-view"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP384R1())
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key, kid: str) -> dict:
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    return {**json.loads(algorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig"}


def token(key=RSA_KEY, alg="RS384", kid="ehr-1", **claims) -> str:
    now = int(time.time())
    body = {"iss": EHR, "aud": URL, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4()),
            **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


@pytest.fixture()
def jwks_server():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    server.expect_request("/jwks.json").respond_with_json({"keys": [_jwk(RSA_KEY, "r-1")]})
    yield server
    server.clear()
    server.stop()


@pytest.fixture()
def auth_client(tmp_path, jwks_server):
    trusted = [{"iss": EHR, "jwks": {"keys": [_jwk(RSA_KEY, "ehr-1")]}},
               {"iss": SANDBOX, "jwks": {"keys": [_jwk(EC_KEY, "sb-1")]}},
               {"iss": REMOTE, "jwks_url": jwks_server.url_for("/jwks.json")}]
    path = tmp_path / "trusted.json"
    path.write_text(json.dumps(trusted))
    app = create_app({**FIXTURE_CONFIG, "AUTH_REQUIRED": True, "TRUSTED_CLIENTS": str(path),
                      "AUDIENCE": "http://localhost"})
    return app.test_client()


def _post(client, load_fixture, authorization: str | None):
    headers = {"Authorization": authorization} if authorization else {}
    return client.post("/cds-services/b12-patient-view", json=load_fixture("pv-no-labs"),
                       headers=headers)


def test_rs384_from_a_trusted_ehr_is_accepted(auth_client, load_fixture):
    response = _post(auth_client, load_fixture, f"Bearer {token()}")
    assert response.status_code == 200
    assert response.get_json()["cards"][0]["extension"]["b12cds.assessment"]["phase"] == (
        "insufficient-data")


def test_es384_like_the_sandbox_is_accepted(auth_client, load_fixture):
    signed = token(EC_KEY, "ES384", "sb-1", iss=SANDBOX)
    assert _post(auth_client, load_fixture, f"Bearer {signed}").status_code == 200


def test_jwks_url_is_fetched_once_and_cached(auth_client, load_fixture, jwks_server):
    for _ in range(2):
        signed = token(kid="r-1", iss=REMOTE)
        assert _post(auth_client, load_fixture, f"Bearer {signed}").status_code == 200
    assert len(jwks_server.log) == 1


def test_extra_claims_and_clock_skew_are_tolerated(auth_client, load_fixture):
    now = int(time.time())
    signed = token(nbf=now + 30, sub="ehr-user", iat=now + 30, tenant="t1")
    assert _post(auth_client, load_fixture, f"Bearer {signed}").status_code == 200


@pytest.mark.parametrize(
    ("authorization", "problem"),
    [
        (None, "a signed JWT is required"),
        ("Basic dXNlcjpwYXNz", "a signed JWT is required"),
        ("Bearer not-a-jwt", "the token is not a JWT"),
        ("Bearer " + jwt.encode({"iss": EHR, "aud": URL}, None, algorithm="none"),
         "algorithm 'none' is not accepted"),
        ("Bearer " + jwt.encode({"iss": EHR, "aud": URL, "exp": int(time.time()) + 300},
                                "a-shared-secret-long-enough-for-hs256!!", algorithm="HS256"),
         "algorithm 'HS256' is not accepted"),
        ("Bearer " + token(iss="https://stranger.example"), "is not a trusted CDS client"),
        ("Bearer " + token(kid="unknown-kid"), "no key 'unknown-kid'"),
        ("Bearer " + token(OTHER_RSA), "Signature verification failed"),
        ("Bearer " + token(aud="http://localhost/cds-services/b12-order-sign"),
         "Audience doesn't match"),
        ("Bearer " + token(exp=int(time.time()) - 120), "Signature has expired"),
        ("Bearer " + token(exp=None), 'Token is missing the "exp" claim'),
        ("Bearer " + token(jti=None), 'Token is missing the "jti" claim'),
        ("Bearer " + token(iat=int(time.time()) + 600), "The token is not yet valid (iat)"),
        ("Bearer " + token(exp=int(time.time()) + 86400), "lives longer than 300 s"),
    ],
    ids=["missing", "basic", "garbage", "alg-none", "hmac", "unknown-issuer", "unknown-kid",
         "bad-signature", "wrong-audience", "expired", "no-exp", "no-jti", "iat-future",
         "long-lived"],
)
def test_refusals_are_401_with_www_authenticate(auth_client, load_fixture, authorization,
                                                problem):
    response = _post(auth_client, load_fixture, authorization)
    assert response.status_code == 401
    body = response.get_json()
    assert body["error"] == "unauthorized"
    assert body["field"] == "Authorization"
    assert problem in body["detail"]
    assert re.match(r'Bearer realm="b12-cds", error="invalid_token"',
                    response.headers["WWW-Authenticate"])


def test_replayed_jti_is_refused(auth_client, load_fixture):
    signed = token()
    assert _post(auth_client, load_fixture, f"Bearer {signed}").status_code == 200
    again = _post(auth_client, load_fixture, f"Bearer {signed}")
    assert again.status_code == 401
    assert "jti replayed" in again.get_json()["detail"]


def test_discovery_and_preflight_stay_open(auth_client):
    assert auth_client.get("/cds-services").status_code == 200
    assert auth_client.options("/cds-services/b12-patient-view").status_code == 200


def test_configured_audience_behind_a_proxy(tmp_path, load_fixture):
    path = tmp_path / "trusted.json"
    path.write_text(json.dumps([{"iss": EHR, "jwks": {"keys": [_jwk(RSA_KEY, "ehr-1")]}}]))
    app = create_app({**FIXTURE_CONFIG, "AUTH_REQUIRED": True, "TRUSTED_CLIENTS": str(path),
                      "AUDIENCE": "https://cds.example.org/"})
    public = token(aud="https://cds.example.org/cds-services/b12-patient-view")
    assert _post(app.test_client(), load_fixture, f"Bearer {public}").status_code == 200
    assert _post(app.test_client(), load_fixture, f"Bearer {token()}").status_code == 401


def test_auth_is_off_by_default(client, load_fixture):
    assert _post(client, load_fixture, None).status_code == 200


@pytest.mark.parametrize("content", ["not json", "{}", '[{"iss": "x"}]'])
def test_malformed_trusted_clients_file_stops_start_up(tmp_path, content):
    path = tmp_path / "trusted.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=r"trusted\.json"):
        create_app({**FIXTURE_CONFIG, "AUTH_REQUIRED": True, "TRUSTED_CLIENTS": str(path),
                    "AUDIENCE": "http://localhost"})


def test_the_host_header_cannot_choose_the_audience(auth_client, load_fixture):
    other = token(aud="https://other-cds.example/cds-services/b12-patient-view")
    response = auth_client.post("/cds-services/b12-patient-view", json=load_fixture("pv-no-labs"),
                                headers={"Authorization": f"Bearer {other}",
                                         "Host": "other-cds.example"}, base_url="https://other-cds.example")
    assert response.status_code == 401


def test_auth_without_an_audience_stops_start_up(tmp_path):
    path = tmp_path / "trusted.json"
    path.write_text(json.dumps([{"iss": EHR, "jwks": {"keys": [_jwk(RSA_KEY, "ehr-1")]}}]))
    with pytest.raises(ConfigError, match="CDS_AUTH_REQUIRED needs CDS_AUDIENCE"):
        create_app({**FIXTURE_CONFIG, "AUTH_REQUIRED": True, "TRUSTED_CLIENTS": str(path)})
