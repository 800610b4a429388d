"""WSGI entry point for gunicorn: each worker builds its own app (and rule engine) after forking."""

from cds.app import create_app

app = create_app()
