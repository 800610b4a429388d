"""b12-cds: a CDS Hooks service for vitamin B12 injection therapy."""

from cds.app import create_app

__all__ = ["create_app"]
