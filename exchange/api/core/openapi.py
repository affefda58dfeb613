"""OpenAPI completeness: every error the service can answer is documented with the error envelope.

FastAPI documents request-validation failures as ``HTTPValidationError`` (``{"detail": [...]}``),
but the service answers every error as ``{"error": {"code", "message", "detail"}}``
(``exchange.api.main``). This post-processing of the generated schema (once, cached)
replaces those references with ``ErrorResponse``, and documents ``400`` (a body that is
not valid JSON) on every operation that takes a body, so fuzzing against the schema
(schemathesis, ``tests/exchange/test_fuzz.py``) finds no undocumented answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from exchange.api.schemas.common import ErrorResponse

_VALIDATION_REF = "#/components/schemas/HTTPValidationError"
_ERROR_REF = "#/components/schemas/ErrorResponse"


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}}}


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite error responses of a generated schema to the service's error envelope."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorResponse" not in components:
        generated = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in generated.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components["ErrorResponse"] = generated
    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            responses = op.setdefault("responses", {})
            for status, resp in list(responses.items()):
                media = resp.get("content", {}).get("application/json", {})
                if media.get("schema", {}).get("$ref") == _VALIDATION_REF:
                    responses[status] = _error_response("请求参数不正确 Invalid request (code invalid_request)")
            if "requestBody" in op and "400" not in responses:
                responses["400"] = _error_response("请求体无法解析 The body is not valid JSON or form data")
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    return schema


def install(app: FastAPI) -> None:
    """Serve the completed schema at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(get_openapi(
                title=app.title, version=app.version, openapi_version=app.openapi_version,
                summary=app.summary, description=app.description, routes=app.routes, tags=app.openapi_tags,
                servers=app.servers))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
