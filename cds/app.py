"""The Flask application factory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from cds import config as _config
from cds import feedback
from cds.api import discovery, errors, http, meta, services
from cds.auth import ClientAuth
from cds.errors import ConfigError
from cds.pipeline import Pipeline


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings (defaults < environment < `config`), rules, blueprints, errors."""
    app = Flask(__name__)
    app.config.update(_config.load(config))
    app.extensions["b12cds"] = Pipeline(app.config)
    app.extensions["b12cds.store"] = feedback.Store(app.config["DB"])
    if app.config["AUTH_REQUIRED"]:
        if not app.config["AUDIENCE"]:
            raise ConfigError("CDS_AUDIENCE", "CDS_AUTH_REQUIRED needs CDS_AUDIENCE, the "
                              "service's public base URL that tokens' `aud` must name")
        app.extensions["b12cds.auth"] = ClientAuth(app.config["TRUSTED_CLIENTS"] or "")
    app.json.sort_keys = False
    app.register_blueprint(discovery.bp)
    app.register_blueprint(services.bp)
    app.register_blueprint(meta.bp)
    errors.register(app)
    http.register(app)
    return app
