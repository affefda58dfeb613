"""Errors of the web pages, under one base. Each says what to do; none is retryable."""

from __future__ import annotations

from exchange.exceptions import ExchangeError


class WebError(ExchangeError):
    """Base error of :mod:`exchange.web`."""


class AccountError(WebError):
    """An account could not be created; the message says what to fix."""


class SignInRefused(WebError):
    """Wrong user name or password, or a disabled account (the caller is not told which)."""

    def __init__(self, username: str) -> None:
        self.username = username
        super().__init__(f"sign-in refused for {username!r}")


class LoginRequired(WebError):
    """The page needs a signed-in user of one of ``roles``."""

    def __init__(self, next_path: str, roles: tuple[str, ...], signed_in: bool) -> None:
        self.next_path, self.roles, self.signed_in = next_path, roles, signed_in
        super().__init__(f"{next_path} needs a session of role {' or '.join(roles)}")


class CsrfFailed(WebError):
    """A POST form without the session's CSRF token (or with a stale one)."""

    def __init__(self) -> None:
        super().__init__("the form's CSRF token is missing or does not match the session")


class PageError(WebError):
    """A page cannot be shown or an action not taken; rendered as an error page with ``status``."""

    def __init__(self, status: int, title: str, message: str) -> None:
        self.status, self.title, self.message = status, title, message
        super().__init__(message)
