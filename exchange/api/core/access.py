"""Department access: authenticate, require a purpose, apply grants and holder authorisation, log.

Every certificate read goes through :meth:`AccessControl.authorise`. The order of the
rules, and the stable error code each answers with (also the ``rule`` in the usage log):

1. ``unauthenticated`` (401) — no ``X-API-Key`` header, or a key that is unknown,
   revoked, or belongs to a disabled client.
2. ``purpose_required`` (400) — any of ``X-Purpose-Item`` (service item code),
   ``X-Case-Number``, ``X-Clerk-Id`` missing or empty; ``invalid_purpose`` (403) when the
   item is not in the catalogue.
3. ``not_granted`` (403) — the caller's department holds no grant for the licence type
   (grants are data: ``onewindow admin grant``).
4. holder authorisation (403) — the case must be an application accepted at the counter
   for this holder (``holder_not_authorised`` otherwise), or the request carries a
   single-use 用证码 in ``X-Authorisation-Code`` that is valid for this holder
   (``authorisation_code_invalid`` / ``_expired`` / ``_used``); redeeming one binds
   the case to the holder, so later reads in the same case need no new code.

Every decision, granted or denied, is appended to the usage log with the rule that
decided it. The holder's identifier is stored masked, plus encrypted to the auditors'
key so that only auditors can recover the full value.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from exchange.api.core.tls import peer_certificate
from exchange.api.core.identifiers import SessionSealer
from exchange.api.exceptions import AccessDenied, PurposeRequired, Unauthenticated
from exchange.onceonly.catalogue import Catalogue
from exchange.onceonly.exceptions import UnknownItemError
from exchange.store.base import Client, ServiceStore, StoreError
from exchange.usagelog.auditor import IdentifierSealer
from quality.standards import mask_identifier

log = logging.getLogger("exchange.api.access")

MAX_FIELD = 64


@dataclass(frozen=True)
class Purpose:
    item_code: str
    case_number: str
    clerk_id: str


@dataclass(frozen=True)
class RequestCredentials:
    """What the request says about who asks and why (checked by :meth:`AccessControl.authorise`)."""

    api_key: str | None
    item_code: str | None
    case_number: str | None
    clerk_id: str | None
    authorisation_code: str | None
    #: DER client certificate of a mutual-TLS connection (verified against the hub root by TLS)
    client_cert: bytes | None = None


@dataclass(frozen=True)
class Decision:
    client: Client
    purpose: Purpose
    granted_types: frozenset[str]
    seq: int


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


async def credentials(
    request: Request,
    x_api_key: Annotated[str | None, Header(description="API key of the department client")] = None,
    x_purpose_item: Annotated[str | None, Header(description="用证事项: service item code (基本编码 or 实施编码)")] = None,
    x_case_number: Annotated[str | None, Header(description="办件编号: case number")] = None,
    x_clerk_id: Annotated[str | None, Header(description="经办人: clerk id")] = None,
    x_authorisation_code: Annotated[str | None, Header(description="用证码 the holder gave (single use)")] = None,
) -> RequestCredentials:
    return RequestCredentials(_clean(x_api_key), _clean(x_purpose_item), _clean(x_case_number),
                              _clean(x_clerk_id), _clean(x_authorisation_code),
                              peer_certificate(request.scope) if "extensions" in request.scope else None)


_CREDENTIAL_HEADERS = {b"x-api-key": 0, b"x-purpose-item": 1, b"x-case-number": 2, b"x-clerk-id": 3,
                       b"x-authorisation-code": 4}


def credentials_of(request: Request) -> RequestCredentials:
    """:func:`credentials` read straight from the request's raw headers (lean routes,
    ``exchange.api.core.lean``): the first of each header, decoded as Starlette decodes it.

    A route using it documents the same headers with ``openapi_extra=CREDENTIAL_OPENAPI``.
    """
    found: list[str | None] = [None] * 5
    for name, value in request.scope["headers"]:  # ASGI header names are lower-case
        i = _CREDENTIAL_HEADERS.get(name)
        if i is not None and found[i] is None:
            found[i] = value.decode("latin-1")
    return RequestCredentials(*(_clean(v) for v in found),
                              peer_certificate(request.scope) if "extensions" in request.scope else None)


def _credential_parameters() -> list[dict[str, Any]]:
    """The OpenAPI header parameters FastAPI generates for :func:`credentials`, taken from a probe app."""
    from fastapi import FastAPI

    probe = FastAPI()

    @probe.get("/probe")
    async def _probe(creds: Annotated[RequestCredentials, Depends(credentials)]) -> None:
        return None

    return probe.openapi()["paths"]["/probe"]["get"]["parameters"]


#: ``openapi_extra`` of a route that reads credentials with :func:`credentials_of`
CREDENTIAL_OPENAPI: dict[str, Any] = {"parameters": _credential_parameters()}


class AccessControl:
    def __init__(self, store: ServiceStore, sealer: IdentifierSealer | SessionSealer, catalogue: Catalogue) -> None:
        self.store = store
        self.sealer = sealer
        self.catalogue = catalogue

    #: mutual TLS (exchange.api.core.tls.CertificateAuthenticator), set by tls.install
    certificates: Any = None

    def authenticate(self, creds: RequestCredentials) -> Client | None:
        """The client every presented credential (API key, client certificate) names; None if any fails."""
        by_key = self.store.authenticate(creds.api_key) if creds.api_key else None
        if creds.client_cert is None:
            return by_key
        by_cert = self.certificates.authenticate(creds.client_cert) if self.certificates else None
        if by_cert is None or (creds.api_key and (by_key is None or by_key.client_id != by_cert.client_id)):
            return None
        return by_cert

    def record(self, *, at: dt.datetime, **kw: Any) -> int:
        """Append one usage-log record; returns its ``seq`` once committed."""
        return self.store.append_log(self._log_record(**kw), at=at).seq

    async def record_async(self, *, at: dt.datetime, **kw: Any) -> int:
        """:meth:`record` for the event loop: awaits the group commit of the record's batch."""
        return (await self.store.submit_log_async(self._log_record(**kw), at=at)).seq

    def _log_record(self, *, action: str, client: Client | None, creds: RequestCredentials,
                    holder_code: str | None, licence_types: Iterable[str], decision: str, rule: str,
                    target: str | None) -> dict[str, Any]:
        return {
            "action": action, "target": target,
            "client_id": client.client_id if client else None,
            "department": client.department_code if client else None,
            "purpose": {"item": creds.item_code, "case": creds.case_number, "clerk": creds.clerk_id},
            "holder_masked": mask_identifier(holder_code) if holder_code else None,
            "holder_sealed": self.sealer.seal(holder_code) if holder_code else None,
            "licence_types": sorted(set(licence_types)), "decision": decision, "rule": rule}

    @staticmethod
    def _deny(exc: Exception, rule: str, **kw: Any) -> Exception:
        return _Denied(exc, rule, kw)

    def authorise(self, creds: RequestCredentials, *, action: str, holder_code: str | None,
                  licence_types: Iterable[str], at: dt.datetime, target: str | None = None,
                  require_all: bool = True) -> Decision:
        """Apply the rules in order; raise the first that denies (after logging it), else log and return.

        ``require_all``: every type in ``licence_types`` must be granted (reading one licence);
        otherwise the granted subset is returned (listing a holder's certificates) and only a
        department with none of them granted is refused.
        """
        try:
            kw, rule, allowed = self._evaluate(creds, action=action, holder_code=holder_code,
                                               licence_types=licence_types, at=at, target=target,
                                               require_all=require_all)
        except _Denied as denied:
            self.record(decision="denied", rule=denied.rule, **denied.kw)
            raise denied.exc from None
        seq = self.record(decision="granted", rule=rule, **kw)
        return Decision(kw["client"], _purpose(creds), allowed, seq)

    async def authorise_async(self, creds: RequestCredentials, *, action: str, holder_code: str | None,
                              licence_types: Iterable[str], at: dt.datetime, target: str | None = None,
                              require_all: bool = True) -> Decision:
        """:meth:`authorise` for ``async`` routes: the rules run on the loop (in-memory and cached
        reads), the usage-log record is awaited, not waited for in a thread."""
        try:
            kw, rule, allowed = self._evaluate(creds, action=action, holder_code=holder_code,
                                               licence_types=licence_types, at=at, target=target,
                                               require_all=require_all)
        except _Denied as denied:
            await self.record_async(decision="denied", rule=denied.rule, **denied.kw)
            raise denied.exc from None
        seq = await self.record_async(decision="granted", rule=rule, **kw)
        return Decision(kw["client"], _purpose(creds), allowed, seq)

    def _evaluate(self, creds: RequestCredentials, *, action: str, holder_code: str | None,
                  licence_types: Iterable[str], at: dt.datetime, target: str | None,
                  require_all: bool) -> tuple[dict[str, Any], str, frozenset[str]]:
        """(the record's fields, the granting rule, the granted types); raises :class:`_Denied`."""
        types = sorted(set(licence_types))
        kw: dict[str, Any] = {"action": action, "creds": creds, "holder_code": holder_code,
                              "licence_types": types, "target": target, "at": at}
        client = self.authenticate(creds)
        if client is None:
            why = ("缺少 X-API-Key 请求头或客户端证书" if not (creds.api_key or creds.client_cert)
                   else "API key 或客户端证书无效、已吊销或客户端已停用")
            raise self._deny(Unauthenticated(f"{why}。Authenticate with the X-API-Key header of an "
                                             "active department client (onewindow admin issue-key)."),
                             "unauthenticated", client=None, **kw)
        kw["client"] = client
        missing = [h for h, v in (("X-Purpose-Item", creds.item_code), ("X-Case-Number", creds.case_number),
                                  ("X-Clerk-Id", creds.clerk_id)) if not v]
        too_long = [h for h, v in (("X-Purpose-Item", creds.item_code), ("X-Case-Number", creds.case_number),
                                   ("X-Clerk-Id", creds.clerk_id)) if v and len(v) > MAX_FIELD]
        if missing or too_long:
            raise self._deny(PurposeRequired(
                f"用证必须说明用途：事项编码、办件编号、经办人。Every certificate read names its purpose; "
                f"missing: {', '.join(missing) or '-'}; longer than {MAX_FIELD}: {', '.join(too_long) or '-'}.",
                detail={"missing": missing, "too_long": too_long}), "purpose_required", **kw)
        try:
            self.catalogue.get(creds.item_code or "")
        except UnknownItemError:
            raise self._deny(AccessDenied("invalid_purpose",
                                          f"用证事项 {creds.item_code} 不在事项目录中。The purpose item is not "
                                          "a service item of the catalogue (GET /api/v1/items)."),
                             "invalid_purpose", **kw) from None
        granted = self.store.grants_of(client.department_code)
        allowed = frozenset(t for t in types if t in granted)
        refused = [t for t in types if t not in granted]
        if (require_all and refused) or (not require_all and types and not allowed) or not granted:
            raise self._deny(AccessDenied("not_granted",
                                          f"{client.department_name} 未获授权读取该类证照。The department "
                                          f"{client.department_code} holds no grant for {', '.join(refused) or 'any type'}.",
                                          detail={"licence_types": refused}), "not_granted", **kw)
        rule = "ok"
        if holder_code is not None:
            rule = self._holder_rule(creds, client, holder_code, at, kw)
        return kw, rule, allowed

    def _holder_rule(self, creds: RequestCredentials, client: Client, holder_code: str, at: dt.datetime,
                     kw: dict[str, Any]) -> str:
        case = creds.case_number or ""
        app = self.store.application(case)
        if app is not None and app.holder_code == holder_code:
            return f"application:{app.basis}"
        if app is not None:
            raise self._deny(AccessDenied("holder_not_authorised",
                                          f"办件 {case} 属于另一持证人。The case was accepted for another holder."),
                             "holder_not_authorised", **kw)
        if creds.authorisation_code:
            try:
                self.store.redeem_code(creds.authorisation_code, holder_code, case_number=case,
                                       item_code=creds.item_code or "", clerk_id=creds.clerk_id or "",
                                       client_id=client.client_id, at=at)
            except StoreError as exc:
                raise self._deny(AccessDenied(exc.code, str(exc)), exc.code, **kw) from None
            return "authorisation_code"
        raise self._deny(AccessDenied(
            "holder_not_authorised",
            f"读取持证人（{mask_identifier(holder_code)}）的证照需要窗口受理的办件或持证人给出的用证码。"
            "Reading a holder's certificates needs an application accepted at the counter for this case "
            "number, or a single-use authorisation code (X-Authorisation-Code) from the holder."),
            "holder_not_authorised", **kw)


class _Denied(Exception):
    """A rule denied: the API error to answer with, the rule, and the usage-log record's fields."""

    def __init__(self, exc: Exception, rule: str, kw: dict[str, Any]) -> None:
        super().__init__(rule)
        self.exc, self.rule, self.kw = exc, rule, kw


def _purpose(creds: RequestCredentials) -> Purpose:
    return Purpose(creds.item_code or "", creds.case_number or "", creds.clerk_id or "")


async def get_access(request: Request) -> AccessControl:
    return request.app.state.access


AccessDep = Annotated[AccessControl, Depends(get_access)]
CredentialsDep = Annotated[RequestCredentials, Depends(credentials)]
