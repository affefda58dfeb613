"""The pages: sign-in, the counter (综合受理窗口), licence verification, the audit room.

A clerk acts as the counter API client of their account (``web_accounts.client_id``):
every read of a holder's certificates goes through :class:`AccessControl` with the
purpose (first chosen item, case number, clerk user name) and lands in the usage log,
exactly like the same read over the API. Opening a case with the applicant at the
counter records the application (basis ``counter``), the holder authorisation the
reads need; accepting the case (受理) completes it and produces the receipt.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from exchange.api.core.access import AccessControl, RequestCredentials
from exchange.api.core.identifiers import HolderCode, check_holder_code
from exchange.api.deps import CST, get_now
from exchange.api.exceptions import ApiError, InvalidIdentifier
from exchange.onceonly.catalogue import expr_material_keys
from exchange.onceonly.exceptions import UnknownItemError
from exchange.onceonly.resolver import STATUS_NAMES, Applicant, resolve
from exchange.web import accounts, indicators
from exchange.web.app import AUDIT_ROLES, check_csrf, render, require
from quality.standards import mask_identifier

router = APIRouter(include_in_schema=False)
CLERK_ROLES = ("clerk", "administrator")
MAX_TOKEN = 64 * 1024
LOG_LIMIT = 200
_ZH = re.compile(r"^(.*?。)(?=[A-Za-z(]|$)", re.S)


def zh(message: str) -> str:
    """The Chinese sentence(s) of a bilingual service message."""
    m = _ZH.match(message or "")
    return m.group(1) if m else message


def _now(request: Request) -> dt.datetime:
    return request.app.dependency_overrides.get(get_now, get_now)()


class _CounterAccess(AccessControl):
    """The service's access rules with the web clerk's counter client as the authenticated caller."""

    def __init__(self, base: AccessControl, client: Any) -> None:
        self.__dict__.update(base.__dict__)
        self._client = client

    def authenticate(self, creds: RequestCredentials) -> Any:
        return self._client


def _counter_access(request: Request, user: dict[str, Any]) -> _CounterAccess:
    base: AccessControl = request.app.state.access
    client = base.store.client(user["client_id"]) if user.get("client_id") else None
    if client is None or client.disabled or "counter" not in client.roles:
        raise ApiError(f"账户 {user['username']} 未关联可用的窗口客户端（{user.get('client_id') or '无'}），"
                       "请联系管理员（onewindow admin add-user … --client）。")
    return _CounterAccess(base, client)


# ------------------------------------------------------------------ sign-in
@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "") -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next), username="", error=None)


def _safe_next(value: str) -> str:
    return value if value.startswith("/") and not value.startswith("//") else ""


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    nxt = _safe_next(str(form.get("next") or ""))
    error = None
    if not username or not password:
        error = "请填写用户名和密码。"
    else:
        account = accounts.authenticate(request.app.state.service_store, username, password)
        if account is None:
            error = "用户名或密码不正确，请重新输入。"
    if error:
        return render(request, "login.html", 401, next=nxt, username=username, error=error)
    request.session.clear()  # a new session (and CSRF token) on sign-in
    request.session.update(user=account.username, role=account.role, name=account.display_name,
                           client_id=account.client_id, csrf=secrets.token_urlsafe(24))
    home = "/counter" if account.role == "clerk" else "/audit"
    return RedirectResponse(nxt or home, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/web")
def web_home(request: Request) -> Response:
    user = require(request, "clerk", *AUDIT_ROLES)
    return RedirectResponse("/counter" if user["role"] == "clerk" else "/audit", status_code=303)


# ------------------------------------------------------------------ counter: open a case
def _items(request: Request, q: str) -> list[Any]:
    return request.app.state.catalogue.search(q.strip() or None)


def _check_code(raw: str, what: str) -> tuple[HolderCode | None, str | None]:
    if not raw.strip():
        return None, f"请填写{what}（18位公民身份号码或统一社会信用代码）。"
    try:
        return check_holder_code(raw), None
    except InvalidIdentifier as exc:
        return None, f"{what}：{zh(exc.message)}请核对后重新输入。"


@router.get("/counter", response_class=HTMLResponse)
def counter_page(request: Request) -> HTMLResponse:
    require(request, *CLERK_ROLES)
    return render(request, "counter.html", form={"code": "", "agent": "", "q": "", "items": []},
                  items=_items(request, ""), errors={})


@router.post("/counter", response_class=HTMLResponse)
async def counter_open(request: Request) -> Response:
    """Search items (keeps what was typed) or open a case for the applicant at the counter."""
    user = require(request, *CLERK_ROLES)
    form = await request.form()
    check_csrf(request, form)
    values = {"code": str(form.get("code") or "").strip(), "agent": str(form.get("agent") or "").strip(),
              "q": str(form.get("q") or "").strip(), "items": [str(v) for v in form.getlist("items")]}
    if form.get("action") != "open":
        return render(request, "counter.html", form=values, items=_items(request, values["q"]), errors={})
    errors: dict[str, str] = {}
    holder, err = _check_code(values["code"], "申请人证件号码")
    if err:
        errors["code"] = err
    agent = None
    if values["agent"]:
        agent, err = _check_code(values["agent"], "经办人身份证号码")
        if agent is not None and agent.code_type != "111":
            agent, err = None, "经办人身份证号码：应为18位公民身份号码（GB 11643），请核对后重新输入。"
        if err:
            errors["agent"] = err
    catalogue = request.app.state.catalogue
    chosen = []
    for code in values["items"]:
        try:
            chosen.append(catalogue.get(code))
        except UnknownItemError:
            errors["items"] = f"事项编码 {code} 不在事项目录中，请重新选择。"
    if not values["items"]:
        errors["items"] = "请至少勾选一个办理事项（可先按名称搜索）。"
    if holder is not None and holder.check_char_warning:
        with request.app.state.snapshots.lease() as snap:
            on_file = snap.index.subject(holder.code) is not None or bool(snap.index.certificates_of(holder.code))
        if not on_file:
            errors["code"] = f"申请人证件号码：{zh(holder.check_char_warning)}请核对后重新输入。"
    if errors:
        return render(request, "counter.html", 422, form=values, items=_items(request, values["q"]), errors=errors)
    access = _counter_access(request, user)
    now = _now(request)
    case = f"WC{now.astimezone(CST):%Y%m%d}-{secrets.token_hex(3).upper()}"
    creds = RequestCredentials(None, chosen[0].code, case, user["username"], None)
    store = request.app.state.service_store
    store.accept_application(case, chosen[0].code, holder.code, user["username"], access._client.client_id, at=now)
    access.record(action="accept_application", client=access._client, creds=creds, holder_code=holder.code,
                  licence_types=[], decision="granted", rule="counter", target=case, at=now)
    store.open_case(case, holder_code=holder.code, code_type=holder.code_type, agent_code=agent.code if agent else None,
                    item_codes=[i.code for i in chosen], clerk=user["username"], client_id=access._client.client_id,
                    at=now)
    return RedirectResponse(f"/counter/cases/{case}", status_code=303)


# ------------------------------------------------------------------ counter: the case
def _case(request: Request, user: dict[str, Any], case_number: str) -> dict[str, Any]:
    case = request.app.state.service_store.counter_case(case_number)
    if case is None or (user["role"] == "clerk" and case["client_id"] != user["client_id"]):
        raise ApiError(f"没有办件 {case_number}，或该办件不属于本窗口。")
    case["items"] = json.loads(case["item_codes"])
    case["received_list"] = json.loads(case["received"] or "[]")
    case["outcome_data"] = json.loads(case["outcome"]) if case["outcome"] else None
    return case


def _req_key(r: Any) -> str:
    return f"{r.holder_role}:{r.title}"


def _answer(request: Request, user: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    """Read (through the access rules, logged) the holder's licences and the once-only answer."""
    from exchange.api.routes.onceonly import to_response

    catalogue = request.app.state.catalogue
    access = _counter_access(request, user)
    now = _now(request)
    holder = case["holder_code"]
    creds = RequestCredentials(None, case["items"][0], case["case_number"], user["username"], None)
    materials = request.app.state.materials
    with request.app.state.snapshots.lease() as snap:
        all_certs = snap.index.certificates_of(holder)
        decision = access.authorise(creds, action="subject_certificates", holder_code=holder,
                                    licence_types=[c["licence_type_code"] for c in all_certs], at=now,
                                    require_all=False)
        subject = snap.index.subject(holder)
        certs = [dict(c, status_name=STATUS_NAMES.get(c["status"], "未知")) for c in all_certs
                 if c["licence_type_code"] in decision.granted_types]
        access.authorise(creds, action="once_only", holder_code=holder, licence_types=[], at=now,
                         target=",".join(case["items"])[:256], require_all=False)
        at = now.astimezone(CST).replace(tzinfo=None)
        res = resolve(catalogue, snap.index, Applicant(holder, case["code_type"], case["agent_code"]),
                      case["items"], at=at, materials=materials)
        answer = to_response(res, snap.snapshot_id, access.store.grants_of(decision.client.department_code))
    case_materials = [m for m in materials.materials_of(holder) if m["case_number"] == case["case_number"]]
    uploaded_ids = {m["material_id"] for m in case_materials}
    upload_types: dict[str, list[Any]] = {}
    for r in answer.requirements:
        keys: list[str] = []
        for s in r.serves:
            m = next(m for m in catalogue.get(s.item_code).materials if m.key == s.material_key)
            keys += [k for k in (expr_material_keys(m.satisfied_by) if m.satisfied_by else []) if k not in keys]
        upload_types[_req_key(r)] = [catalogue.material_type(k) for k in keys]
    name = subject["name"] if subject else (all_certs[0]["holder_name"] if all_certs else None)
    return {"answer": answer, "certs": certs, "subject": subject, "holder_name": name,
            "holder_masked": mask_identifier(holder), "case_materials": case_materials,
            "uploaded_ids": uploaded_ids, "upload_types": upload_types, "req_key": _req_key,
            "items": [catalogue.get(c) for c in case["items"]]}


def _case_page(request: Request, user: dict[str, Any], case_number: str, *, status: int = 200,
               error: str | None = None, notice: str | None = None, received: list[str] | None = None) -> Response:
    try:
        case = _case(request, user, case_number)
        data = _answer(request, user, case)
    except ApiError as exc:
        return render(request, "error.html", exc.status_code if exc.status_code != 500 else 403,
                      title="无法办理", message=zh(exc.message))
    return render(request, "case.html", status, case=case, error=error, notice=notice,
                  received=received if received is not None else case["received_list"],
                  media_accept=",".join(sorted({t for ts in data["upload_types"].values() for m in ts
                                                for t in m.media_types})), **data)


@router.get("/counter/cases/{case_number}", response_class=HTMLResponse)
def case_page(request: Request, case_number: str) -> Response:
    user = require(request, *CLERK_ROLES)
    return _case_page(request, user, case_number)


@router.post("/counter/cases/{case_number}/materials", response_class=HTMLResponse)
async def upload_material(request: Request, case_number: str) -> Response:
    """Submit a material into the material library for this case (type and size limits apply)."""
    from exchange.materials import MaterialError

    user = require(request, *CLERK_ROLES)
    form = await request.form()
    check_csrf(request, form)
    try:
        case = _case(request, user, case_number)
        access = _counter_access(request, user)
    except ApiError as exc:
        return render(request, "error.html", 404, title="无法办理", message=zh(exc.message))
    materials = request.app.state.materials
    material_type = str(form.get("material_type") or "")
    upload = form.get("file")
    now = _now(request)
    if upload is None or isinstance(upload, str) or not upload.filename:
        return _case_page(request, user, case_number, status=422, error="请先选择要上传的材料文件（PDF、JPEG 或 PNG）。")
    creds = RequestCredentials(None, case["items"][0], case_number, user["username"], None)
    try:
        mt = materials.material_type(material_type)
        data = await upload.read(mt.max_bytes + 1)
        rec, new = materials.submit(data, media_type=(upload.content_type or "").split(";")[0].strip(),
                                    material_type=material_type, holder_code=case["holder_code"],
                                    submitted_by=user["username"], at=now, filename=upload.filename,
                                    case_number=case_number)
    except MaterialError as exc:
        access.record(action="submit_material", client=access._client, creds=creds, holder_code=case["holder_code"],
                      licence_types=[], decision="denied", rule=exc.code, target=material_type, at=now)
        return _case_page(request, user, case_number, status=exc.status,
                          error=f"材料未收取：{zh(str(exc))}请换用符合要求的文件后重新上传。")
    access.record(action="submit_material", client=access._client, creds=creds, holder_code=case["holder_code"],
                  licence_types=[], decision="granted", rule="counter", target=material_type, at=now)
    how = "新文件已存入材料库" if new else "材料库中已有同一文件（按 SHA-256 只存一份）"
    return _case_page(request, user, case_number, status=201,
                      notice=f"已收取「{mt.name}」（{upload.filename}，{how}）。请核验原件后点击“核验通过”。")


@router.post("/counter/cases/{case_number}/materials/{material_id}/verify", response_class=HTMLResponse)
async def verify_material(request: Request, case_number: str, material_id: str) -> Response:
    from exchange.materials import MaterialError

    user = require(request, *CLERK_ROLES)
    form = await request.form()
    check_csrf(request, form)
    try:
        case = _case(request, user, case_number)
        access = _counter_access(request, user)
    except ApiError as exc:
        return render(request, "error.html", 404, title="无法办理", message=zh(exc.message))
    rec = request.app.state.service_store.material(material_id)
    if rec is None or rec["case_number"] != case_number:
        return _case_page(request, user, case_number, status=404, error="该材料不属于本办件。")
    now = _now(request)
    creds = RequestCredentials(None, case["items"][0], case_number, user["username"], None)
    try:
        request.app.state.materials.verify(material_id, verified_by=user["username"], at=now)
    except MaterialError as exc:
        return _case_page(request, user, case_number, status=exc.status, error=zh(str(exc)))
    access.record(action="verify_material", client=access._client, creds=creds, holder_code=None,
                  licence_types=[], decision="granted", rule="counter", target=material_id, at=now)
    return RedirectResponse(f"/counter/cases/{case_number}", status_code=303)


@router.post("/counter/cases/{case_number}/accept", response_class=HTMLResponse)
async def accept_case(request: Request, case_number: str) -> Response:
    """受理: every necessary material is on file or taken at the counter; record what was reused and taken."""
    user = require(request, *CLERK_ROLES)
    form = await request.form()
    check_csrf(request, form)
    received = [str(v) for v in form.getlist("received")]
    try:
        case = _case(request, user, case_number)
        data = _answer(request, user, case)
        access = _counter_access(request, user)
    except ApiError as exc:
        return render(request, "error.html", 404, title="无法办理", message=zh(exc.message))
    if case["accepted_at"]:
        return RedirectResponse(f"/counter/cases/{case_number}/receipt", status_code=303)
    answer = data["answer"]
    lacking = [r.title for r in answer.requirements
               if r.status == "must_submit" and r.necessity == "必要" and _req_key(r) not in received]
    if lacking:
        return _case_page(request, user, case_number, status=422, received=received,
                          error="以下必要材料尚未收取：" + "；".join(f"「{t}」" for t in lacking)
                          + "。请上传并核验，或收取纸质材料后勾选“已收取”，再点击受理。")
    by_case = {m["material_id"] for m in data["case_materials"]}
    reused, taken = [], []
    for r in answer.requirements:
        items = "、".join(dict.fromkeys(s.item_name for s in r.serves))
        if r.status == "on_file":
            mine = [u for u in r.on_file if u.kind == "material" and u.material_id in by_case]
            if mine:
                taken.append({"title": r.title, "how": "当场提交，已存入材料库并核验", "items": items,
                              "digest": mine[0].digest[:12] if mine[0].digest else ""})
            else:
                reused.append({"title": r.title, "items": items, "from": [
                    {"what": u.licence_type, "number": u.cert_number or ("材料库 " + (u.digest or "")[:12]),
                     "by": u.issuing_department or u.verified_by or "", "until": u.valid_until or "长期"}
                    for u in r.on_file]})
        elif _req_key(r) in received:
            taken.append({"title": r.title, "how": "纸质材料当场收取", "items": items, "digest": ""})
    outcome = {"reused": reused, "taken": taken, "required": len(reused) + len(taken),
               "items": [{"code": i.code, "name": i.name} for i in data["items"]],
               "holder_name": data["holder_name"], "holder_masked": data["holder_masked"],
               "findings": [f.message_zh for f in answer.findings], "clerk": user["name"] or user["username"]}
    now = _now(request)
    store = request.app.state.service_store
    store.update_case(case_number, received=json.dumps(received, ensure_ascii=False),
                      outcome=json.dumps(outcome, ensure_ascii=False), accepted_at=now)
    creds = RequestCredentials(None, case["items"][0], case_number, user["username"], None)
    access.record(action="accept_case", client=access._client, creds=creds, holder_code=case["holder_code"],
                  licence_types=[], decision="granted", rule="counter", target=case_number, at=now)
    return RedirectResponse(f"/counter/cases/{case_number}/receipt", status_code=303)


@router.get("/counter/cases/{case_number}/receipt", response_class=HTMLResponse)
def receipt(request: Request, case_number: str) -> Response:
    user = require(request, *CLERK_ROLES)
    try:
        case = _case(request, user, case_number)
    except ApiError as exc:
        return render(request, "error.html", 404, title="无法办理", message=zh(exc.message))
    if not case["accepted_at"]:
        return RedirectResponse(f"/counter/cases/{case_number}", status_code=303)
    return render(request, "receipt.html", case=case, o=case["outcome_data"])


# ------------------------------------------------------------------ verify a presented licence
@router.get("/counter/verify", response_class=HTMLResponse)
def verify_page(request: Request) -> HTMLResponse:
    require(request, *CLERK_ROLES, "auditor")
    return render(request, "verify.html", token="", result=None, error=None)


@router.post("/counter/verify", response_class=HTMLResponse)
async def verify_submit(request: Request) -> Response:
    """Verify a pasted or uploaded licence token: signature, issuer, current status, validity."""
    from certificates import verify_licence

    require(request, *CLERK_ROLES, "auditor")
    form = await request.form()
    check_csrf(request, form)
    token = str(form.get("token") or "").strip()
    upload = form.get("file")
    if upload is not None and not isinstance(upload, str) and upload.filename:
        raw = await upload.read(MAX_TOKEN + 1)
        if len(raw) > MAX_TOKEN:
            return render(request, "verify.html", 413, token="", result=None,
                          error=f"上传的文件超过 {MAX_TOKEN // 1024} KB，不是电子证照文件。请上传签发的 .jws 证照文件。")
        try:
            token = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            return render(request, "verify.html", 422, token="", result=None,
                          error="上传的文件不是电子证照（应为签名后的文本文件 .jws）。请重新选择文件。")
    if not token:
        return render(request, "verify.html", 422, token="", result=None,
                      error="请粘贴电子证照内容，或选择证照文件后再核验。")
    if len(token) > MAX_TOKEN:
        return render(request, "verify.html", 413, token="", result=None,
                      error=f"粘贴的内容超过 {MAX_TOKEN // 1024} KB，不是电子证照。")
    try:
        trust = request.app.state.trust.get()
        with request.app.state.snapshots.lease() as snap:
            result = verify_licence(token, trust, at=_now(request), status_lookup=snap.index.licence_status)
    except ApiError as exc:
        return render(request, "verify.html", exc.status_code, token=token, result=None, error=zh(exc.message))
    return render(request, "verify.html", token=token, result=result, error=None,
                  holder=(result.payload or {}).get("holder") or {} if result.ok else {})


@router.post("/counter/verify/print", response_class=HTMLResponse)
async def verify_print(request: Request) -> Response:
    """Printable copy (with QR code to /verify/{id}) of a presented licence that verifies."""
    from certificates import verify_licence
    from certificates.render import render_licence_html

    require(request, *CLERK_ROLES, "auditor")
    form = await request.form()
    check_csrf(request, form)
    token = str(form.get("token") or "").strip()[:MAX_TOKEN]
    result = verify_licence(token, request.app.state.trust.get(), at=_now(request))
    if result.payload is None or result.code in ("tampered", "unknown_issuer", "malformed"):
        return render(request, "verify.html", 422, token=token, result=result,
                      error=f"证照无法核验，不予打印：{result.reason_zh}")
    url = str(request.url_for("verify_page", licence_id=result.licence_id))
    return HTMLResponse(render_licence_html(result.payload, verify_url=url))


# ------------------------------------------------------------------ audit room
@router.get("/audit", response_class=HTMLResponse)
def audit_home(request: Request) -> HTMLResponse:
    require(request, *AUDIT_ROLES)
    data = indicators.collect(request.app, _now(request))
    return render(request, "audit.html", ind=data)


ACTION_NAMES = {"subject_certificates": "查询持证主体证照", "licence": "调取电子证照", "once_only": "一次提交核对",
                "accept_application": "登记受理办件", "submit_material": "提交材料", "verify_material": "核验材料",
                "list_materials": "查询材料", "accept_case": "窗口受理"}
RULE_NAMES = {"ok": "准予", "counter": "综合受理窗口", "unauthenticated": "未认证", "purpose_required": "未说明用途",
              "invalid_purpose": "用途事项无效", "not_granted": "部门未获授权", "holder_not_authorised": "无持证人授权",
              "authorisation_code_invalid": "用证码无效", "authorisation_code_expired": "用证码已过期",
              "authorisation_code_used": "用证码已使用", "not_counter": "非窗口客户端",
              "application:counter": "窗口受理办件", "application:code": "持证人用证码", "authorisation_code": "持证人用证码"}


def _log_filters(params: Any) -> dict[str, str]:
    return {k: str(params.get(k) or "").strip() for k in ("holder", "department", "item", "date_from", "date_to",
                                                          "outcome")}


def search_log(store: Any, f: dict[str, str]) -> tuple[list[dict[str, Any]], str | None]:
    """Usage-log records matching the filters, newest first (at most LOG_LIMIT), and an input error."""
    holder_masked = None
    if f["holder"]:
        h = f["holder"].upper()
        holder_masked = h if "*" in h else mask_identifier(h)
    for k in ("date_from", "date_to"):
        if f[k]:
            try:
                dt.date.fromisoformat(f[k])
            except ValueError:
                return [], f"日期“{f[k]}”格式不正确，应为 YYYY-MM-DD，例如 2026-11-20。"
    out = []
    for r in reversed(store.log_records()):
        if f["date_from"] and r.day < f["date_from"]:
            continue
        if f["date_to"] and r.day > f["date_to"]:
            continue
        rec = json.loads(r.record)
        purpose = rec.get("purpose") or {}
        if holder_masked and rec.get("holder_masked") != holder_masked:
            continue
        if f["department"] and f["department"] not in (rec.get("department") or ""):
            continue
        if f["item"] and f["item"] not in (purpose.get("item") or ""):
            continue
        if f["outcome"] and rec.get("decision") != f["outcome"]:
            continue
        rec["purpose"] = purpose
        out.append(rec)
        if len(out) >= LOG_LIMIT:
            break
    return out, None


@router.get("/audit/log", response_class=HTMLResponse)
def audit_log(request: Request) -> HTMLResponse:
    require(request, *AUDIT_ROLES)
    f = _log_filters(request.query_params)
    store = request.app.state.service_store
    searched = any(f.values()) or "search" in request.query_params
    records, error = search_log(store, f) if searched else ([], None)
    return render(request, "log.html", 422 if error else 200, f=f, records=records, error=error, searched=searched,
                  departments=dict(store.departments()), chain=None, limit=LOG_LIMIT,
                  action_names=ACTION_NAMES, rule_names=RULE_NAMES)


@router.post("/audit/log", response_class=HTMLResponse)
async def audit_log_search(request: Request) -> HTMLResponse:
    """The search as a POST form, so that a holder's full ID number never lands in a URL or access log."""
    require(request, *AUDIT_ROLES)
    form = await request.form()
    check_csrf(request, form)
    f = _log_filters(form)
    store = request.app.state.service_store
    records, error = search_log(store, f)
    return render(request, "log.html", 422 if error else 200, f=f, records=records, error=error, searched=True,
                  departments=dict(store.departments()), chain=None, limit=LOG_LIMIT,
                  action_names=ACTION_NAMES, rule_names=RULE_NAMES)


@router.post("/audit/log/verify", response_class=HTMLResponse)
async def audit_verify_chain(request: Request) -> HTMLResponse:
    """Verify the live hash chain of the usage log (exchange.usagelog.verify.verify_store_chain)."""
    from exchange.usagelog.verify import verify_store_chain

    require(request, *AUDIT_ROLES)
    form = await request.form()
    check_csrf(request, form)
    store = request.app.state.service_store
    report = verify_store_chain(store)
    chain = {"intact": report.intact, "records": len(store.log_records()), "days": report.days,
             "problem": str(report.first_broken) if report.first_broken else None}
    return render(request, "log.html", f=_log_filters({}), records=[], error=None, searched=False,
                  departments=dict(store.departments()), chain=chain, limit=LOG_LIMIT,
                  action_names=ACTION_NAMES, rule_names=RULE_NAMES)
