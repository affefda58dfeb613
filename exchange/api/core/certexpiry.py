"""Expiry warnings for signing certificates (证书到期提醒): at service start, on /quality, as JSON.

Read from the published trust material (public certificates only), so the service needs no
private key for it. The window is ``ONEWINDOW_CERT_WARN_DAYS`` (default 60, as the
pipeline's warning in :func:`certificates.pki.warn_expiring`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from exchange.api.exceptions import TrustUnavailable

log = logging.getLogger("exchange.api.certexpiry")


def warn_days() -> int:
    """``ONEWINDOW_CERT_WARN_DAYS`` (a bad value is logged and the default used)."""
    from certificates.pki import DEFAULT_WARN_DAYS, ENV_WARN_DAYS

    raw = os.environ.get(ENV_WARN_DAYS)
    if raw is None:
        return DEFAULT_WARN_DAYS
    try:
        days = int(raw)
        if days < 0:
            raise ValueError("negative")
    except ValueError:
        log.warning("%s=%r is not a whole number of days >= 0; using %d", ENV_WARN_DAYS, raw, DEFAULT_WARN_DAYS)
        return DEFAULT_WARN_DAYS
    return days


def expiring(trust: Any, at: dt.datetime, days: int | None = None) -> list[Any]:
    """:class:`certificates.trust.CertExpiry` of current signing certificates due within the window."""
    return trust.expiring(at, days=warn_days() if days is None else days)


def as_dict(entry: Any) -> dict[str, Any]:
    return {"kind": entry.kind, "kid": entry.kid, "code": entry.code, "name": entry.name,
            "subject": entry.subject, "not_after": entry.not_after.isoformat(timespec="seconds"),
            "days_left": entry.days_left, "expired": entry.expired, "message_zh": entry.message_zh}


def log_expiring(app: Any, at: dt.datetime) -> list[str]:
    """Log one warning per certificate due (service start); returns the messages."""
    try:
        trust = app.state.trust.get()
    except TrustUnavailable as exc:
        log.info("certificate expiry not checked: %s", exc.message)
        return []
    messages = []
    for entry in expiring(trust, at):
        msg = f"证书到期提醒: {entry.message_zh} (kid {entry.kid}, not after {entry.not_after:%Y-%m-%d})"
        log.warning(msg)
        messages.append(msg)
    return messages


def now_for_expiry(app: Any) -> dt.datetime:
    """The service's notion of now (``get_now``, or its test override)."""
    from exchange.api.deps import get_now

    return app.dependency_overrides.get(get_now, get_now)()
