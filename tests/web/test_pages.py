"""The counter and the audit room in headless Chromium against the real service on loopback."""

from __future__ import annotations

import base64
import json
import sqlite3

import httpx
import pytest

from quality.standards import mask_identifier
from tests.exchange.factories import make_client, purpose_headers
from tests.exchange.test_api import NOW, PROPERTY, RESTAURANT
from tests.web.conftest import AUDITOR, CLERK, artifacts_dir, new_page, shot, sign_in, text_of

pytestmark = [pytest.mark.service, pytest.mark.slow]

ID_RENEWAL = "000104010000"
PDF = b"%PDF-1.4\n% lease contract of the restaurant premises\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _bad_check(code: str) -> tuple[str, str]:
    """``code`` with a wrong check character, and the wrong character."""
    wrong = "0" if code[17] != "0" else "1"
    return code[:17] + wrong, wrong


def test_sign_in_refuses_a_bad_password_and_signs_out(hub, browser):
    page = new_page(browser)
    page.goto(f"{hub.url}/counter")
    assert page.url.startswith(f"{hub.url}/login?next=")  # pages need a session
    shot(page, "login")
    sign_in(page, hub, (CLERK[0], "not-the-password"))
    assert "用户名或密码不正确" in text_of(page, "#login-error")
    assert page.input_value("input[name=username]") == CLERK[0]  # the typed user name is kept
    shot(page, "login-refused")
    sign_in(page, hub, CLERK)
    assert page.url == f"{hub.url}/counter"
    assert "张敏" in text_of(page, "header")
    cookie = next(c for c in page.context.cookies() if c["name"] == "ow_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.click("header button:has-text('退出登录')")
    assert page.url == f"{hub.url}/login"
    page.goto(f"{hub.url}/counter")
    assert "/login" in page.url
    # A clerk is not an auditor: the audit room and the quality report stay closed.
    sign_in(page, hub, CLERK)
    page.goto(f"{hub.url}/quality")
    assert "/login" in page.url
    sign_in(page, hub, CLERK)
    page.goto(f"{hub.url}/audit")
    assert "此页面仅限审计人员、管理员使用" in text_of(page, "main")
    shot(page, "forbidden")
    page.context.close()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_counter_flow_restaurant_one_upload_rest_reused(hub, browser, world, javascript):
    """开办餐饮店: licences and the agent's ID card come from the library; the premises proof is uploaded."""
    tag = "js" if javascript else "nojs"
    co, rep = world["co"]["subject_code"], world["rep"]["subject_code"]
    page = new_page(browser, javascript=javascript)
    sign_in(page, hub, CLERK)
    shot(page, f"counter-{tag}")
    # Search items by name: the typed code survives the search round trip.
    bad, wrong = _bad_check(rep)
    page.fill("#code", co)
    page.fill("#agent", bad)
    if javascript:  # progressive enhancement: the check character is checked as typed
        assert f"为“{wrong}”" in text_of(page, "#agent-hint")
    page.fill("input[name=q]", "餐饮")
    page.click("button[value=search]")
    assert page.input_value("#code") == co and page.input_value("#agent") == bad
    labels = page.locator("ul.items li").all_inner_texts()
    assert len(labels) == 1 and "开办餐饮店" in labels[0]
    page.check(f"input[name=items][value='{RESTAURANT}']")
    page.click("#open-case")
    # Server-side check on submit: names the bad check character; keeps what was typed.
    errors = text_of(page, "#form-errors")
    assert "经办人身份证号码" in errors and f"为“{wrong}”" in errors and f"应为“{rep[17]}”" in errors
    assert page.input_value("#code") == co and page.input_value("#agent") == bad
    assert page.is_checked(f"input[name=items][value='{RESTAURANT}']")
    assert "bad" in page.get_attribute("label:has(#agent)", "class")  # only the wrong field is marked
    assert "bad" not in (page.get_attribute("label:has(#code)", "class") or "")
    assert "bad" not in (page.get_attribute("fieldset", "class") or "")
    shot(page, f"counter-error-{tag}")
    page.fill("#agent", rep)
    page.click("#open-case")

    assert "/counter/cases/WC" in page.url
    case = page.inner_text("#case-number").strip()
    licences = text_of(page, "#licences")
    assert "营业执照" in licences and "食品经营许可证" in licences and "有效" in licences
    reqs = page.locator("#requirements tbody tr")
    assert reqs.count() == 3
    premises = page.locator("#requirements tr.must_submit")
    assert premises.count() == 1 and "经营场所使用证明" in premises.inner_text()
    assert page.locator("#requirements tr.on_file").count() == 2
    shot(page, f"case-{tag}")

    # Accepting before the premises proof is taken is refused with what is missing.
    page.click("#accept")
    assert "经营场所使用证明" in text_of(page, "#case-error")
    # A file of the wrong type is refused with the reason; then the PDF is taken.
    premises = page.locator("#requirements tr.must_submit")
    premises.locator("input[type=file]").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"just text"})
    premises.locator("button:has-text('上传')").click()
    assert "材料未收取" in text_of(page, "#case-error")
    premises = page.locator("#requirements tr.must_submit")
    premises.locator("input[type=file]").set_input_files(
        {"name": "lease.pdf", "mimeType": "application/pdf", "buffer": PDF})
    premises.locator("button:has-text('上传')").click()
    assert "已收取「经营场所使用证明」" in text_of(page, "#notice")
    assert "lease.pdf" in text_of(page, "#case-materials")
    page.click("#case-materials button:has-text('核验通过')")
    assert "已核验" in text_of(page, "#case-materials")
    assert page.locator("#requirements tr.must_submit").count() == 0  # the verified material now counts
    shot(page, f"case-material-verified-{tag}")
    page.click("#accept")

    assert page.url.endswith(f"/counter/cases/{case}/receipt")
    reused, taken = text_of(page, "#reused"), text_of(page, "#taken")
    assert "营业执照" in reused and "食品经营许可证" in reused and "居民身份证" in reused
    assert "经营场所使用证明" in taken and "经营场所使用证明" not in reused
    assert co not in page.content() and mask_identifier(co) in text_of(page, "#receipt")
    shot(page, f"receipt-{tag}")
    page.emulate_media(media="print")
    assert not page.is_visible("header.top") and page.is_visible("#receipt")
    page.screenshot(path=str(artifacts_dir() / f"receipt-print-{tag}.png"), full_page=True)
    if javascript:
        page.pdf(path=str(artifacts_dir() / "receipt.pdf"), format="A4")

    # Every read the clerk made went through the access rules into the usage log, with the purpose.
    records = [json.loads(r.record) for r in hub.store.log_records()]
    reads = [r for r in records if r["action"] in ("subject_certificates", "once_only")
             and r["purpose"]["case"] == case]
    assert reads and all(r["decision"] == "granted" and r["client_id"] == "web-counter"
                         and r["purpose"] == {"item": RESTAURANT, "case": case, "clerk": CLERK[0]}
                         and r["holder_masked"] == mask_identifier(co) for r in reads)
    assert hub.store.application(case).holder_code == co
    assert any(r["action"] == "accept_case" and r["target"] == case for r in records)
    # The manager's 免提交率: 2 of the 3 requirements (licences, agent's ID card) came from the library.
    from exchange.web.indicators import collect

    ind = collect(hub.app, NOW)
    assert (ind["reused"], ind["required"]) == (2, 3) and round(ind["rate"]) == 67
    assert "开办餐饮店" in ind["rate_chart"] and "<svg" in ind["apps_chart"]
    page.context.close()


def _forged(token: str) -> str:
    from certificates import canonical_json

    header, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["holder"]["name"] = "冒名顶替"
    body = base64.urlsafe_b64encode(canonical_json(claims)).rstrip(b"=").decode()
    return f"{header}.{body}.{sig}"


def test_verify_a_valid_and_a_tampered_licence(hub, browser, world):
    lic = world["lic"]["food"]
    page = new_page(browser, javascript=False)
    sign_in(page, hub, CLERK)
    page.goto(f"{hub.url}/counter/verify")
    shot(page, "verify")
    page.fill("textarea[name=token]", lic["token"])
    page.click("#verify")
    outcome = text_of(page, "#outcome")
    assert "证照有效" in outcome and "杭州味道餐饮有限公司" in outcome and lic["licence_id"] in outcome
    shot(page, "verify-valid")
    # The printable copy with its QR code to /verify/{id}.
    with page.context.expect_page() as opened:
        page.click("button:has-text('打印证照副本')")
    printed = opened.value
    printed.wait_for_load_state()
    assert "<svg" in printed.content() and f"/verify/{lic['licence_id']}" in printed.content()
    shot(printed, "licence-copy")
    page.goto(f"{hub.url}/counter/verify")
    page.fill("textarea[name=token]", _forged(lic["token"]))
    page.click("#verify")
    outcome = text_of(page, "#outcome")
    assert "证照不能采信" in outcome and "篡改" in outcome and "tampered" in outcome
    assert "冒名顶替" not in outcome  # nothing from a forged payload is shown as fact
    shot(page, "verify-tampered")
    # Uploading the signed file works like pasting it.
    page.goto(f"{hub.url}/counter/verify")
    page.set_input_files("input[name=file]", {"name": "licence.jws", "mimeType": "application/jose",
                                              "buffer": lic["token"].encode()})
    page.click("#verify")
    assert "证照有效" in text_of(page, "#outcome")
    # The QR code's link: the public verify page, no personal data.
    page.goto(f"{hub.url}/verify/{lic['licence_id']}")
    assert "valid" in page.content() and "杭州味道餐饮有限公司" not in page.content()
    shot(page, "verify-qr-link")
    revoked = world["lic"]["property"]
    page.goto(f"{hub.url}/counter/verify")
    page.fill("textarea[name=token]", revoked["token"])
    page.click("#verify")
    assert "证照不能采信" in text_of(page, "#outcome") and "revoked" in text_of(page, "#outcome")
    page.context.close()


def test_auditor_finds_a_record_in_the_usage_log_and_verifies_the_chain(hub, browser, world):
    person = world["person"]["subject_code"]
    key = make_client(hub.store, department="11330100002496556D", department_name="杭州市规划和自然资源局",
                      types=["property"])
    hub.store.accept_application("ZR-2026-7", RESTAURANT, person, "clerk-zr", "zr", at=NOW)
    with httpx.Client(base_url=hub.url) as api:
        ok = api.get(f"/api/v1/subjects/{person}/certificates",
                     headers=purpose_headers(key, case="ZR-2026-7", clerk="clerk-zr"))
        assert ok.status_code == 200
        denied = api.get(f"/api/v1/subjects/{person}/certificates",
                         headers=purpose_headers(key, case="ZR-OTHER", clerk="clerk-zr"))
        assert denied.status_code == 403
    page = new_page(browser)
    sign_in(page, hub, AUDITOR)
    assert page.url == f"{hub.url}/audit"
    assert "各部门数据质量分与更新时间" in page.content() and "<svg" in page.content()
    assert "公安 · 人口信息" in text_of(page, "main")
    # Freshness: the newest interval ended at 2026-11-20 00:00 CST, ten hours before NOW.
    assert "10.0 小时前" in page.content() and "2026-11-20 00:00" in text_of(page, "main")
    assert "99.80%" in text_of(page, "main")  # gongan's newest run: 998 of 1,000
    shot(page, "audit")
    page.click("a.card:has-text('数据质量报告')")
    assert page.url == f"{hub.url}/quality" and "各部门数据质量分趋势" in page.content()
    shot(page, "quality")
    page.goto(f"{hub.url}/audit/log")
    shot(page, "usage-log")
    page.fill("input[name=holder]", person)
    page.select_option("select[name=department]", "11330100002496556D")
    page.fill("input[name=item]", RESTAURANT)
    page.fill("input[name=date_from]", "2026-11-20")
    page.fill("input[name=date_to]", "2026-11-20")
    page.select_option("select[name=outcome]", "denied")
    page.click("button[name=search]")
    rows = page.locator("#log-results tbody tr")
    assert rows.count() == 1
    row = rows.inner_text()
    assert "ZR-OTHER" in row and "holder_not_authorised" in row and "拒绝" in row
    assert mask_identifier(person) in row and person not in text_of(page, "#log-results")
    assert person not in page.url  # searched by POST: no ID number in URLs or access logs
    assert page.input_value("input[name=holder]") == person  # the search form keeps its values
    shot(page, "usage-log-search")
    page.select_option("select[name=outcome]", "granted")
    page.click("button[name=search]")
    assert "ZR-2026-7" in text_of(page, "#log-results") and "ZR-OTHER" not in text_of(page, "#log-results")
    page.fill("input[name=date_from]", "2026-13-01")
    page.evaluate("document.querySelector('input[name=date_from]').type = 'text'")
    page.fill("input[name=date_from]", "2026-13-01")
    page.click("button[name=search]")
    assert "YYYY-MM-DD" in text_of(page, ".error")
    page.click("#verify-chain")
    assert "哈希链完整" in text_of(page, "#chain-result")
    shot(page, "usage-log-chain")
    # Edit one record behind the service's back: the page names the broken record.
    seq = next(r.seq for r in hub.store.log_records() if "\"granted\"" in r.record)
    db = sqlite3.connect(hub.store.path)
    db.execute("UPDATE usage_log SET record = replace(record, 'granted', 'denied') WHERE seq = ?", (seq,))
    db.commit()
    db.close()
    page.click("#verify-chain")
    result = text_of(page, "#chain-result")
    assert "哈希链已损坏" in result and f"seq={seq}" in result
    page.context.close()


def test_counter_two_item_bundle_paper_materials_and_findings(hub, browser, world):
    """不动产转移登记 + 居民身份证换领 in one case (JavaScript off): items ticked across two searches, a revoked
    certificate does not count, the photo is uploaded, paper materials are ticked as received, and the
    cross-check finding (王晓明 / 王小明 on the marriage certificate) is shown for the clerk."""
    person = world["person"]["subject_code"]
    page = new_page(browser, javascript=False)
    sign_in(page, hub, CLERK)
    page.fill("#code", person)
    page.fill("input[name=q]", "不动产")
    page.click("button[value=search]")
    page.check(f"input[name=items][value='{PROPERTY}']")
    page.fill("input[name=q]", "身份证换领")
    page.click("button[value=search]")  # the first item is no longer listed but stays chosen
    page.check(f"input[name=items][value='{ID_RENEWAL}']")
    page.click("#open-case")
    case = page.inner_text("#case-number").strip()
    assert "不动产转移登记" in text_of(page, "main") and "居民身份证换领" in text_of(page, "main")
    assert "王小明" in text_of(page, "#findings") and "王晓明" in text_of(page, "#findings")
    titles = page.locator("#requirements tr.must_submit").all_inner_texts()
    assert any("不动产权证书" in t and "撤销" in t for t in titles)  # on file but revoked: not counted
    assert page.locator("#requirements tr.must_submit input[type=file]").count() == 1  # only the photo
    for title in ("不动产登记申请书", "不动产转移合同", "原居民身份证"):
        page.locator("#requirements tr.must_submit", has_text=title).locator("input[name=received]").check()
    page.click("#accept")
    error = text_of(page, "#case-error")
    assert "不动产权证书" in error and "数字相片" in error and "不动产登记申请书" not in error  # only what is missing
    assert page.is_checked("#requirements tr.must_submit:has-text('不动产登记申请书') input[name=received]")
    photo = page.locator("#requirements tr.must_submit", has_text="数字相片")
    photo.locator("input[type=file]").set_input_files({"name": "photo.png", "mimeType": "image/png",
                                                       "buffer": b"\x89PNG\r\n\x1a\n" + b"\0" * 64})
    photo.locator("button:has-text('上传')").click()
    page.click("#case-materials button:has-text('核验通过')")
    for title in ("不动产登记申请书", "不动产转移合同", "原居民身份证", "不动产权证书"):
        page.locator("#requirements tr.must_submit", has_text=title).locator("input[name=received]").check()
    page.click("#accept")
    assert page.url.endswith(f"/counter/cases/{case}/receipt")
    taken, reused = text_of(page, "#taken"), text_of(page, "#reused")
    assert "纸质材料当场收取" in taken and "不动产权证书" in taken and "原居民身份证" in taken
    assert "居民身份证数字相片" in taken and "当场提交" in taken
    assert "居民身份证" in reused and "居民户口簿" in reused and "结婚证" in reused
    assert "比对提示" in page.content()
    assert sorted(json.loads(hub.store.counter_case(case)["item_codes"])) == sorted([PROPERTY, ID_RENEWAL])
    shot(page, "receipt-bundle-nojs")
    page.context.close()
