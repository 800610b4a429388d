"""Cross-cutting HTTP behaviour: CORS and one structured log line per service call.

The log line carries no patient data and no tokens: hookInstance, service id, status, duration,
card count and rule ids only.
"""

from __future__ import annotations

import json
import logging
import time

from flask import Flask, Response, g, request

log = logging.getLogger("cds.calls")


def register(app: Flask) -> None:
    origins = [o.strip() for o in app.config["CORS_ORIGINS"].split(",") if o.strip()]
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = True

    @app.before_request
    def start_clock() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def cors_and_log(response: Response) -> Response:
        _cors(response, origins)
        if request.path.startswith("/cds-services/") and request.method == "POST":
            _log_call(response)
        return response


def _cors(response: Response, origins: list[str]) -> None:
    origin = request.headers.get("Origin")
    if not origin:
        return
    if "*" in origins:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin in origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.add("Vary", "Origin")
    else:
        return
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"


def _log_call(response: Response) -> None:
    record = {
        "event": "cds-call",
        "service": request.path.removeprefix("/cds-services/"),
        "hookInstance": g.get("hook_instance"),
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000,
                             2),
        "cards": g.get("card_count", 0),
        "rules": g.get("rule_ids", []),
    }
    log.info(json.dumps(record))
