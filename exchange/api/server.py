"""Run the service with uvicorn (used by the CLI's ``serve`` command)."""

from __future__ import annotations

from warehouse.datadir import Layout


def serve(layout: Layout, host: str = "127.0.0.1", port: int = 8000, *,
          log_level: str = "info") -> None:
    """Serve the hub for ``layout`` on ``host:port`` until interrupted.

    HTTPS with optional client certificates (mutual TLS) when ``ONEWINDOW_TLS_CERT`` and
    ``ONEWINDOW_TLS_KEY`` are set (see :mod:`exchange.api.core.tls`).
    """
    import uvicorn

    from exchange.api.core.tls import TLSSettings
    from exchange.api.main import create_app

    tls = TLSSettings.from_env(layout)
    uvicorn.run(create_app(layout), host=host, port=port, log_level=log_level,
                **(tls.uvicorn_kwargs() if tls else {}))
