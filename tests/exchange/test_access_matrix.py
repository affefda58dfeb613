"""The full authorisation matrix: every registered department × every registered licence type ×
(granted / not granted) × (with / without purpose) × holder authorisation (accepted
application / 用证码 / none). Each cell is one licence read with one expected answer and
exactly one usage-log record naming the rule that decided it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from fastapi.testclient import TestClient

from certificates.registry import load_registry
from exchange.api.deps import get_now
from exchange.api.main import create_app
from tests.exchange.factories import (make_certificate, make_company, make_licence, make_person, make_snapshot,
                                      purpose_headers)
from tests.exchange.test_api import NOW, RESTAURANT, keyring  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("store_backend")  # every test on SQLite and on PostgreSQL

HOLDER_AUTH = ("application", "code", "none")


@pytest.fixture()
def every_type(layout, keyring):
    """One licence of every registered type, held by a person or a company as the type requires."""
    from certificates import publish_trust

    publish_trust(keyring, layout.trust)
    person, company = make_person(name="孙丽"), make_company(name="杭州全证科技有限公司")
    reg = load_registry()
    certs, lics = [], {}
    for key, lt in reg.licence_types.items():
        holder = company if lt.holder == "organisation" else person
        certs.append(make_certificate(key, holder, valid_until=dt.date(2035, 1, 1)))
        lics[key] = make_licence(certs[-1], keyring)
    make_snapshot(layout, subjects=[person, company], licences=lics.values(), certificates=certs,
                  snapshot_id="snap-matrix")
    return lics


@pytest.fixture()
def service(layout, every_type):
    app = create_app(layout, watch_interval=None)
    app.dependency_overrides[get_now] = lambda: NOW
    with TestClient(app) as http:
        store = app.state.service_store
        keys = {}
        for dept in load_registry().departments.values():
            store.add_department(dept.code, dept.name)
            store.add_client(f"sys-{dept.key}", dept.code, dept.name, [])
            keys[dept.key] = store.issue_key(f"sys-{dept.key}", at=NOW)
        yield app, http, keys


def test_full_authorisation_matrix(service, every_type):
    app, http, keys = service
    store, reg = app.state.service_store, load_registry()
    departments, types = list(reg.departments.values()), list(reg.licence_types)
    cells = list(itertools.product(departments, types, (True, False), (True, False), HOLDER_AUTH))
    assert len(cells) == len(departments) * len(types) * 2 * 2 * 3 >= 8 * 14 * 12
    outcomes: dict[str, int] = {}
    for n, (dept, type_key, granted, with_purpose, holder_auth) in enumerate(cells):
        lic = every_type[type_key]
        where = (dept.key, type_key, granted, with_purpose, holder_auth)
        if granted:
            store.grant(dept.code, lic["licence_type_code"], by="matrix", at=NOW)
        case = f"MX-{n}"
        code = None
        if holder_auth == "application":
            store.accept_application(case, RESTAURANT, lic["holder_code"], "clerk-1", "counter", at=NOW)
        elif holder_auth == "code":
            code = store.issue_code(lic["holder_code"], at=NOW, ttl=dt.timedelta(minutes=30))
        headers = purpose_headers(keys[dept.key], case=case, code=code)
        if not with_purpose:
            del headers["X-Purpose-Item"]
        before = len(store.log_records())
        resp = http.get(f"/api/v1/licences/{lic['licence_id']}", headers=headers)
        if granted:
            store.revoke_grant(dept.code, lic["licence_type_code"])
        if not with_purpose:
            expected = (400, "purpose_required")
        elif not granted:
            expected = (403, "not_granted")
        elif holder_auth == "none":
            expected = (403, "holder_not_authorised")
        else:
            expected = (200, "application:counter" if holder_auth == "application" else "authorisation_code")
        assert resp.status_code == expected[0], (where, resp.text)
        if expected[0] == 200:
            body = resp.json()
            assert body["licence_id"] == lic["licence_id"], where
            assert body["use_copy"]["expires_at"], where  # a use-copy, not the bare licence
        else:
            assert resp.json()["error"]["code"] == expected[1], where
        records = store.log_records()
        assert len(records) == before + 1, where
        rec = json.loads(records[-1].record)
        assert (rec["department"], rec["client_id"], rec["target"]) == (dept.code, f"sys-{dept.key}",
                                                                         lic["licence_id"]), where
        assert rec["decision"] == ("granted" if expected[0] == 200 else "denied"), where
        assert rec["rule"] == expected[1], where
        assert rec["licence_types"] == [lic["licence_type_code"]], where
        assert lic["holder_code"] not in json.dumps(rec, ensure_ascii=False), where
        outcomes[expected[1]] = outcomes.get(expected[1], 0) + 1
    per = len(departments) * len(types)
    assert outcomes == {"purpose_required": per * 2 * 3, "not_granted": per * 3,
                        "holder_not_authorised": per, "application:counter": per, "authorisation_code": per}
    assert not any(store.grants_of(d.code) for d in departments), "every grant was withdrawn again"
