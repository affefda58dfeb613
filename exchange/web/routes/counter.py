"""The counter (综合受理窗口): open a case, the once-only answer, materials, accept, receipt.

Opening a case with the applicant at the counter records the application (basis
``counter``), the holder authorisation the access rules need; every read afterwards
goes through :class:`AccessControl` with the purpose (first chosen item, case number,
clerk user name) and lands in the usage log like the same read over the API.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from exchange.api.core.access import RequestCredentials
from exchange.api.core.identifiers import HolderCode, check_holder_code
from exchange.api.deps import CST
from exchange.api.exceptions import ApiError, InvalidIdentifier
from exchange.onceonly.catalogue import expr_material_keys
from exchange.onceonly.exceptions import UnknownItemError
from exchange.onceonly.resolver import STATUS_NAMES, Applicant, resolve
from exchange.web.app import check_csrf, render, require
from exchange.web.exceptions import PageError
from exchange.web.routes.common import CLERK_ROLES, clock, counter_access, zh
from quality.standards import mask_identifier

router = APIRouter(include_in_schema=False)


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
    """The counter's new-case form: applicant, agent, service items."""
    require(request, *CLERK_ROLES)
    return render(request, "counter.html", form={"code": "", "agent": "", "q": "", "items": []},
                  items=_items(request, ""), errors={})


@router.post("/counter", response_class=HTMLResponse)
async def counter_open(request: Request) -> Response:
    """Search items (keeps what was typed) or open a case for the applicant at the counter."""
    form = await request.form()
    return await run_in_threadpool(_counter_open, request, form)


def _counter_open(request: Request, form: Any) -> Response:
    user = require(request, *CLERK_ROLES)
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
    access = counter_access(request, user)
    now = clock(request)
    case = f"WC{now.astimezone(CST):%Y%m%d}-{secrets.token_hex(3).upper()}"
    creds = RequestCredentials(None, chosen[0].code, case, user["username"], None)
    store = request.app.state.service_store
    store.accept_application(case, chosen[0].code, holder.code, user["username"], access.client.client_id, at=now)
    access.record(action="accept_application", client=access.client, creds=creds, holder_code=holder.code,
                  licence_types=[], decision="granted", rule="counter", target=case, at=now)
    store.open_case(case, holder_code=holder.code, code_type=holder.code_type, agent_code=agent.code if agent else None,
                    item_codes=[i.code for i in chosen], clerk=user["username"], client_id=access.client.client_id,
                    at=now)
    return RedirectResponse(f"/counter/cases/{case}", status_code=303)


# ------------------------------------------------------------------ counter: the case
def _case(request: Request, user: dict[str, Any], case_number: str) -> dict[str, Any]:
    case = request.app.state.service_store.counter_case(case_number)
    if case is None:
        raise PageError(404, "没有该办件", f"没有编号为 {case_number} 的办件，请核对办件编号。")
    if case["client_id"] != user["client_id"]:
        raise PageError(403, "无法办理", f"办件 {case_number} 不属于本窗口（{user['client_id'] or '无窗口客户端'}）。")
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
    access = counter_access(request, user)
    now = clock(request)
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
    case = _case(request, user, case_number)
    try:
        data = _answer(request, user, case)
    except ApiError as exc:  # refused by the access rules, or no snapshot: said on the page
        return render(request, "error.html", exc.status_code, title="无法办理", message=zh(exc.message))
    return render(request, "case.html", status, case=case, error=error, notice=notice,
                  received=received if received is not None else case["received_list"],
                  media_accept=",".join(sorted({t for ts in data["upload_types"].values() for m in ts
                                                for t in m.media_types})), **data)


@router.get("/counter/cases/{case_number}", response_class=HTMLResponse)
def case_page(request: Request, case_number: str) -> Response:
    """A case: licences on file, the once-only answer, materials taken (reads logged with purpose)."""
    user = require(request, *CLERK_ROLES)
    return _case_page(request, user, case_number)


@router.post("/counter/cases/{case_number}/materials", response_class=HTMLResponse)
async def upload_material(request: Request, case_number: str) -> Response:
    """Submit a material into the material library for this case (type and size limits apply)."""
    form = await request.form()
    return await run_in_threadpool(_upload_material, request, form, case_number)


def _upload_material(request: Request, form: Any, case_number: str) -> Response:
    from exchange.materials import MaterialError

    user = require(request, *CLERK_ROLES)
    check_csrf(request, form)
    case = _case(request, user, case_number)
    access = counter_access(request, user)
    materials = request.app.state.materials
    material_type = str(form.get("material_type") or "")
    upload = form.get("file")
    now = clock(request)
    if upload is None or isinstance(upload, str) or not upload.filename:
        return _case_page(request, user, case_number, status=422, error="请先选择要上传的材料文件（PDF、JPEG 或 PNG）。")
    creds = RequestCredentials(None, case["items"][0], case_number, user["username"], None)
    try:
        mt = materials.material_type(material_type)
        data = upload.file.read(mt.max_bytes + 1)
        rec, new = materials.submit(data, media_type=(upload.content_type or "").split(";")[0].strip(),
                                    material_type=material_type, holder_code=case["holder_code"],
                                    submitted_by=user["username"], at=now, filename=upload.filename,
                                    case_number=case_number)
    except MaterialError as exc:
        access.record(action="submit_material", client=access.client, creds=creds, holder_code=case["holder_code"],
                      licence_types=[], decision="denied", rule=exc.code, target=material_type, at=now)
        return _case_page(request, user, case_number, status=exc.status,
                          error=f"材料未收取：{zh(str(exc))}请换用符合要求的文件后重新上传。")
    access.record(action="submit_material", client=access.client, creds=creds, holder_code=case["holder_code"],
                  licence_types=[], decision="granted", rule="counter", target=material_type, at=now)
    how = "新文件已存入材料库" if new else "材料库中已有同一文件（按 SHA-256 只存一份）"
    return _case_page(request, user, case_number, status=201,
                      notice=f"已收取「{mt.name}」（{upload.filename}，{how}）。请核验原件后点击“核验通过”。")


@router.post("/counter/cases/{case_number}/materials/{material_id}/verify", response_class=HTMLResponse)
async def verify_material(request: Request, case_number: str, material_id: str) -> Response:
    """Mark a material of this case verified by the clerk (reusable for its type's period)."""
    form = await request.form()
    return await run_in_threadpool(_verify_material, request, form, case_number, material_id)


def _verify_material(request: Request, form: Any, case_number: str, material_id: str) -> Response:
    from exchange.materials import MaterialError

    user = require(request, *CLERK_ROLES)
    check_csrf(request, form)
    case = _case(request, user, case_number)
    access = counter_access(request, user)
    rec = request.app.state.service_store.material(material_id)
    if rec is None or rec["case_number"] != case_number:
        return _case_page(request, user, case_number, status=404, error="该材料不属于本办件。")
    now = clock(request)
    creds = RequestCredentials(None, case["items"][0], case_number, user["username"], None)
    try:
        request.app.state.materials.verify(material_id, verified_by=user["username"], at=now)
    except MaterialError as exc:
        return _case_page(request, user, case_number, status=exc.status, error=zh(str(exc)))
    access.record(action="verify_material", client=access.client, creds=creds, holder_code=None,
                  licence_types=[], decision="granted", rule="counter", target=material_id, at=now)
    return RedirectResponse(f"/counter/cases/{case_number}", status_code=303)


@router.post("/counter/cases/{case_number}/accept", response_class=HTMLResponse)
async def accept_case(request: Request, case_number: str) -> Response:
    """受理: every necessary material is on file or taken at the counter; record what was reused and taken."""
    form = await request.form()
    return await run_in_threadpool(_accept_case, request, form, case_number)


def _accept_case(request: Request, form: Any, case_number: str) -> Response:
    user = require(request, *CLERK_ROLES)
    check_csrf(request, form)
    received = [str(v) for v in form.getlist("received")]
    case = _case(request, user, case_number)
    access = counter_access(request, user)
    try:
        data = _answer(request, user, case)
    except ApiError as exc:  # refused by the access rules, or no snapshot: said on the page
        return render(request, "error.html", exc.status_code, title="无法办理", message=zh(exc.message))
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
    now = clock(request)
    store = request.app.state.service_store
    store.update_case(case_number, received=json.dumps(received, ensure_ascii=False),
                      outcome=json.dumps(outcome, ensure_ascii=False), accepted_at=now)
    creds = RequestCredentials(None, case["items"][0], case_number, user["username"], None)
    access.record(action="accept_case", client=access.client, creds=creds, holder_code=case["holder_code"],
                  licence_types=[], decision="granted", rule="counter", target=case_number, at=now)
    return RedirectResponse(f"/counter/cases/{case_number}/receipt", status_code=303)


@router.get("/counter/cases/{case_number}/receipt", response_class=HTMLResponse)
def receipt(request: Request, case_number: str) -> Response:
    """The receipt (受理回执) of an accepted case: what was reused and what was taken."""
    user = require(request, *CLERK_ROLES)
    case = _case(request, user, case_number)
    if not case["accepted_at"]:
        return RedirectResponse(f"/counter/cases/{case_number}", status_code=303)
    return render(request, "receipt.html", case=case, o=case["outcome_data"])
