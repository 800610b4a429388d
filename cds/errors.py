"""The service's exceptions, each carrying the HTTP status it maps to.

    CdsError                  base: status 500 is never used for client input
    ├── BadRequest            400  malformed request; names the offending field
    │   └── FhirValidationError  400  a FHIR resource failed validation
    ├── Unauthorized          401
    ├── NotFound              404  unknown service id or route
    ├── MethodNotAllowed      405
    ├── PayloadTooLarge       413
    ├── UnsupportedMediaType  415  body is not JSON
    └── PreconditionFailed    412  required data could not be obtained
    RuleFileError             start-up only: a malformed rule or value-set file
    └── ConfigError           start-up only: a malformed configuration file (trusted clients)

`cds.api.errors` turns every CdsError into `{"error": ..., "detail": ...}`.
"""

from __future__ import annotations


class CdsError(Exception):
    """Base class: `error` is a short machine-friendly title, `detail` says what and where."""

    status = 500
    error = "internal error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def headers(self) -> dict[str, str]:
        return {}

    def to_json(self) -> dict[str, str]:
        body = {"error": self.error, "detail": self.detail}
        if self.field:
            body["field"] = self.field
        return body


class BadRequest(CdsError):
    status = 400
    error = "bad request"


class FhirValidationError(BadRequest):
    error = "invalid FHIR resource"


class Unauthorized(CdsError):
    status = 401
    error = "unauthorized"

    def headers(self) -> dict[str, str]:
        reason = self.detail.replace('"', "'")
        return {"WWW-Authenticate":
                f'Bearer realm="b12-cds", error="invalid_token", error_description="{reason}"'}


class NotFound(CdsError):
    status = 404
    error = "not found"


class MethodNotAllowed(CdsError):
    status = 405
    error = "method not allowed"


class PreconditionFailed(CdsError):
    status = 412
    error = "precondition failed"


class PayloadTooLarge(CdsError):
    status = 413
    error = "payload too large"


class UnsupportedMediaType(CdsError):
    status = 415
    error = "unsupported media type"


class RuleFileError(Exception):
    """A rule, value-set or parameter file is malformed; raised at start-up, never per request."""

    def __init__(self, path: str, problem: str, *, rule: str | None = None) -> None:
        where = f"{path}: rule {rule!r}" if rule else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.rule = rule
        self.problem = problem


class ConfigError(RuleFileError):
    """A configuration file (e.g. CDS_TRUSTED_CLIENTS) is malformed; raised at start-up."""
