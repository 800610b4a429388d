"""HTTP layer: thin Flask blueprints over `cds.pipeline`."""
