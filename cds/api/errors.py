"""One error-handler family: every error leaves as `{"error": ..., "detail": ...}` JSON."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.exceptions import HTTPException

from cds.errors import CdsError

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    @app.errorhandler(CdsError)
    def cds_error(exc: CdsError):
        return exc.to_json(), exc.status, exc.headers()

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        detail = exc.description or exc.name
        if exc.code == 413:
            detail = f"the request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        # Keep the exception's own headers (e.g. the Allow a 405 must carry), not its HTML type.
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return {"error": exc.name.lower(), "detail": detail}, exc.code, headers

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        # No stack trace or input leaves the service; the log keeps the type for operators.
        log.exception("unhandled %s", type(exc).__name__)
        return {"error": "internal error", "detail": "the service failed; see its log"}, 500
