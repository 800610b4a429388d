"""`GET /cds-services`: the discovery document."""

from flask import Blueprint, current_app

bp = Blueprint("discovery", __name__)


@bp.get("/cds-services")
def discovery() -> dict:
    return current_app.extensions["b12cds"].discovery()
