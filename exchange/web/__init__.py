"""Server-rendered web pages of the hub (窗口与审计): counter clerks, auditors and managers.

Jinja2 templates and static files from this package; no JavaScript framework, nothing
loaded from the internet, every page works with JavaScript disabled. Mounted by
``exchange.api.main.create_app`` through :func:`install`.
"""

from __future__ import annotations

from exchange.web.app import install

__all__ = ["install"]
