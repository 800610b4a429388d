"""`GET /healthz` and `GET /openapi.json`."""

from __future__ import annotations

from flask import Blueprint, current_app

bp = Blueprint("meta", __name__)

_ERROR = {"$ref": "#/components/schemas/Error"}


def _responses(*codes: int) -> dict:
    out = {"200": {"description": "OK"}}
    for code in codes:
        out[str(code)] = {"description": "error",
                          "content": {"application/json": {"schema": _ERROR}}}
    return out


@bp.get("/healthz")
def healthz() -> dict:
    pipeline = current_app.extensions["b12cds"]
    return {"status": "ok", "rules": len(pipeline.rulebook.rules),
            "regimen": pipeline.regimen_name}


@bp.get("/openapi.json")
def openapi() -> dict:
    service_ids = [s["id"] for s in current_app.extensions["b12cds"].discovery()["services"]]
    return {
        "openapi": "3.0.3",
        "info": {"title": "b12-cds", "version": "0.1.0",
                 "description": "CDS Hooks service for vitamin B12 injection therapy"},
        "paths": {
            "/cds-services": {"get": {"summary": "CDS Hooks discovery",
                                      "responses": _responses()}},
            "/cds-services/{id}": {"post": {
                "summary": "Call a CDS service",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "string", "enum": service_ids}}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/HookRequest"}}}},
                "responses": _responses(400, 401, 404, 405, 412, 413, 415),
            }},
            "/cds-services/{id}/feedback": {"post": {
                "summary": "Feedback on the cards a service issued",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "string", "enum": service_ids}}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Feedback"}}}},
                "responses": _responses(400, 401, 404, 413, 415),
            }},
            "/healthz": {"get": {"summary": "Liveness", "responses": _responses()}},
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error", "detail"], "properties": {
                "error": {"type": "string"}, "detail": {"type": "string"},
                "field": {"type": "string"}}},
            "Feedback": {
                "type": "object", "required": ["feedback"],
                "properties": {"feedback": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["card", "outcome", "outcomeTimestamp"],
                    "properties": {
                        "card": {"type": "string"},
                        "outcome": {"type": "string", "enum": ["accepted", "overridden"]},
                        "acceptedSuggestions": {"type": "array", "items": {
                            "type": "object", "required": ["id"],
                            "properties": {"id": {"type": "string"}}}},
                        "overrideReason": {"type": "object"},
                        "outcomeTimestamp": {"type": "string", "format": "date-time"}}}}},
            },
            "HookRequest": {
                "type": "object", "required": ["hook", "hookInstance", "context"],
                "properties": {
                    "hook": {"type": "string",
                             "enum": ["patient-view", "order-select", "order-sign"]},
                    "hookInstance": {"type": "string"},
                    "fhirServer": {"type": "string"},
                    "fhirAuthorization": {"type": "object"},
                    "context": {"type": "object", "required": ["patientId"], "properties": {
                        "patientId": {"type": "string"}, "userId": {"type": "string"},
                        "draftOrders": {"type": "object"},
                        "selections": {"type": "array", "items": {"type": "string"}}}},
                    "prefetch": {"type": "object"},
                },
            },
        }},
    }
