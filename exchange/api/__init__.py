"""The hub's HTTP service (FastAPI): ``create_app()`` in :mod:`exchange.api.main`."""
