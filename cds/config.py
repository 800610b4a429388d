"""Configuration: defaults, overridden by environment variables, overridden by the caller.

| setting         | environment          | default                    |
|-----------------|----------------------|----------------------------|
| RULES_DIR       | CDS_RULES_DIR        | the bundled `rules/`       |
| REGIMEN         | CDS_REGIMEN          | us (or nice)               |
| NOW             | CDS_NOW              | today (ISO date; fixed for replay and tests) |
| CARD_UUID_SEED  | CDS_CARD_UUID_SEED   | unset: random card uuids; set: deterministic |
| MAX_CONTENT_LENGTH | CDS_MAX_BODY_BYTES | 5 MiB                     |
| CORS_ORIGINS    | CDS_CORS_ORIGINS     | * (any origin, no credentials), or a list |
| AUTH_REQUIRED   | CDS_AUTH_REQUIRED    | off; 1 = every service call needs a client JWT |
| TRUSTED_CLIENTS | CDS_TRUSTED_CLIENTS  | JSON file: [{iss, jwks} or {iss, jwks_url}] |
| AUDIENCE        | CDS_AUDIENCE         | public base URL (default: the request's own) |
| DB              | CDS_DB               | var/b12cds.sqlite3 (feedback store, relative) |
| FHIR_SERVERS    | CDS_FHIR_SERVERS     | https:// (base-URL prefixes that may be contacted) |
| FHIR_TIMEOUT    | CDS_FHIR_TIMEOUT     | 2.0 s per FHIR server request |
| FHIR_DEADLINE   | CDS_FHIR_DEADLINE    | 3.0 s for all FHIR server requests of one call |
| FHIR_MAX_PAGES  | CDS_FHIR_MAX_PAGES   | 5 Bundle pages per query   |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BUNDLED_RULES = Path(__file__).resolve().parent.parent / "rules"

_ENV = {
    "RULES_DIR": ("CDS_RULES_DIR", str),
    "REGIMEN": ("CDS_REGIMEN", str),
    "NOW": ("CDS_NOW", str),
    "CARD_UUID_SEED": ("CDS_CARD_UUID_SEED", str),
    "MAX_CONTENT_LENGTH": ("CDS_MAX_BODY_BYTES", int),
    "CORS_ORIGINS": ("CDS_CORS_ORIGINS", str),
    "AUTH_REQUIRED": ("CDS_AUTH_REQUIRED", lambda v: v.strip().lower() in {"1", "true", "yes"}),
    "TRUSTED_CLIENTS": ("CDS_TRUSTED_CLIENTS", str),
    "AUDIENCE": ("CDS_AUDIENCE", str),
    "DB": ("CDS_DB", str),
    "FHIR_SERVERS": ("CDS_FHIR_SERVERS", str),
    "FHIR_TIMEOUT": ("CDS_FHIR_TIMEOUT", float),
    "FHIR_DEADLINE": ("CDS_FHIR_DEADLINE", float),
    "FHIR_MAX_PAGES": ("CDS_FHIR_MAX_PAGES", int),
}


def load(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults < environment < `overrides`."""
    config: dict[str, Any] = {
        "RULES_DIR": str(BUNDLED_RULES),
        "REGIMEN": "us",
        "NOW": None,
        "CARD_UUID_SEED": None,
        "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
        "CORS_ORIGINS": "*",
        "AUTH_REQUIRED": False,
        "TRUSTED_CLIENTS": None,
        "AUDIENCE": None,
        "DB": "var/b12cds.sqlite3",
        "FHIR_SERVERS": "https://",
        "FHIR_TIMEOUT": 2.0,
        "FHIR_DEADLINE": 3.0,
        "FHIR_MAX_PAGES": 5,
    }
    for key, (env, cast) in _ENV.items():
        if os.environ.get(env):
            config[key] = cast(os.environ[env])
    config.update(overrides or {})
    return config
