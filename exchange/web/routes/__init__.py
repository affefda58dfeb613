"""The pages: sign-in, the counter (综合受理窗口), licence verification, the audit room.

None of them is in the OpenAPI schema (``include_in_schema=False``).
"""

from __future__ import annotations

from fastapi import APIRouter

from exchange.web.routes import audit, auth, counter, verify

router = APIRouter(include_in_schema=False)
for _module in (auth, counter, verify, audit):
    router.include_router(_module.router)
