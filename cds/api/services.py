"""`POST /cds-services/<id>`: one service call."""

from __future__ import annotations

import json

from flask import Blueprint, current_app, g, request

from cds import feedback
from cds.errors import BadRequest, NotFound, UnsupportedMediaType
from cds.services import BY_ID

bp = Blueprint("services", __name__)


@bp.before_request
def authenticate() -> None:
    """With CDS_AUTH_REQUIRED, every POST needs a trusted client's JWT (discovery stays open)."""
    auth = current_app.extensions.get("b12cds.auth")
    if auth is None or request.method != "POST":
        return
    # the configured public base URL, never the client-controlled Host header
    audience = current_app.config["AUDIENCE"].rstrip("/") + request.path
    g.client = auth.verify(request.headers.get("Authorization"), audience)["iss"]


def json_body() -> object:
    """The decoded JSON body; 415 when not declared as JSON, 400 when it does not parse."""
    if not request.is_json:
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, not {request.mimetype or 'none'!r}",
            field="Content-Type",
        )
    try:
        return json.loads(request.get_data(cache=False))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}", field="body") from exc
    except RecursionError as exc:
        raise BadRequest("the request body is not valid JSON: nested too deeply",
                         field="body") from exc


@bp.post("/cds-services/<service_id>")
def call(service_id: str) -> dict:
    pipeline = current_app.extensions["b12cds"]
    body = json_body()
    if isinstance(body, dict) and isinstance(body.get("hookInstance"), str):
        g.hook_instance = body["hookInstance"][:100]
    outcome = pipeline.call(service_id, body)
    g.card_count = len(outcome.cards)
    g.rule_ids = outcome.evaluation.rule_ids
    current_app.extensions["b12cds.store"].record_cards(service_id, outcome.cards)
    return {"cards": outcome.cards}


@bp.post("/cds-services/<service_id>/feedback")
def give_feedback(service_id: str) -> dict:
    """Store CDS Hooks feedback; unknown card uuids are stored, flagged and reported."""
    if service_id not in BY_ID:
        raise NotFound(f"no CDS service with id {service_id!r}", field="id")
    items = feedback.parse(json_body())
    unknown = current_app.extensions["b12cds.store"].record_feedback(service_id, items)
    return {"stored": len(items), "unknownCards": unknown}
