"""The OpenAPI 3.1 document of /api/v1, made by flask-openapi3 from the operations' pydantic models,
with what the library can't know added: the one error shape (problem details) on every error answer,
the statuses each kind of operation may answer, the two ways to sign a request, and the ETag header."""

from __future__ import annotations

import copy
from typing import Any

from flask import Flask

from printlab.web.api.problems import MEDIA_TYPE, Problem

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_WHY = {
    "401": "No usable token or workstation session (missing, unknown, expired or revoked token).",
    "403": "The token may only read, or the caller is a browser session (moves need a write token).",
    "404": "No job with that id (or no such operation).",
    "405": "The path doesn't take that method.",
    "409": "The move doesn't apply to the job's status now, or another staff member has the job open.",
    "412": "If-Match is no longer the job's version: someone changed it; nothing was changed.",
    "422": "Fields that can't be used; `errors` has a message per field.",
    "428": "If-Match is missing: read the job and send its ETag.",
    "429": "The token's requests a minute are used up; Retry-After says when to try again.",
    "500": "PrintLab failed; nothing was changed.",
    "503": "PrintLab can't reach its database; nothing was changed.",
}
_READ_ERRORS = ("401", "422", "429", "500", "503")
_JOB_ERRORS = ("404",)
_MOVE_ERRORS = ("403", "404", "409", "412", "428")
_SECURITY = {
    "token": {
        "type": "http",
        "scheme": "bearer",
        "description": "A personal API token made by an admin (Admin → API tokens), as `Authorization: Bearer plt_…`.",
    },
    "workstation": {
        "type": "apiKey",
        "in": "cookie",
        "name": "printlab_session",
        "description": "A signed-in lab workstation's browser session: reading only (the pages' own calls).",
    },
}


def _problem_answer(status: str) -> dict[str, Any]:
    return {"description": _WHY[status], "content": {MEDIA_TYPE: {"schema": _PROBLEM}}}


def build(app: Flask) -> dict[str, Any]:
    """The document for `app` (an `OpenAPI` app with the API blueprint registered)."""
    spec = copy.deepcopy(app.api_doc)  # type: ignore[attr-defined]
    spec["info"] = {
        "title": "PrintLab API",
        "version": "1",
        "description": "The lab's jobs for campus systems: read them, and make the staff's moves through "
        "the same workflow as the job page. Every error is an RFC 9457 problem (application/problem+json).",
    }
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema()
    schemas.pop("ValidationErrorModel", None)
    spec["components"]["securitySchemes"] = _SECURITY
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            answers: dict[str, Any] = operation.setdefault("responses", {})
            statuses = list(_READ_ERRORS)
            if "{job_id}" in path:
                statuses += _JOB_ERRORS
            if method == "post":
                statuses += _MOVE_ERRORS
                ok = answers.get("200", {})
                ok.setdefault("headers", {})["ETag"] = {
                    "description": "The job's new version.",
                    "schema": {"type": "string"},
                }
            elif "{job_id}" in path and not path.endswith(("/events", "/files")):
                answers["200"].setdefault("headers", {})["ETag"] = {
                    "description": "The job's version: send it back as If-Match to change the job.",
                    "schema": {"type": "string"},
                }
            if path.endswith("/jobs"):
                answers["304"] = {"description": "Unchanged since the ETag sent as If-None-Match."}
            for status in statuses:
                answers[status] = _problem_answer(status)
            for status, answer in answers.items():
                if status.isdigit() and int(status) >= 400:
                    answers[status] = _problem_answer(status) if status in _WHY else answer
    return spec


def operations(app: Flask) -> list[dict[str, Any]]:
    """Each operation for the reference page: method, path, summary, description, inputs and answers."""
    spec = build(app)
    schemas = spec["components"]["schemas"]
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            body_ref = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
            )
            body = schemas.get(str(body_ref.get("$ref", "")).rsplit("/", 1)[-1], {})
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "id": operation.get("operationId", ""),
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "tag": (operation.get("tags") or [""])[0],
                    "parameters": [
                        {"name": p["name"], "in": p["in"], "required": p.get("required", False),
                         "description": p.get("description") or p.get("schema", {}).get("description", "")}
                        for p in operation.get("parameters", [])
                    ],
                    "body": [
                        {"name": name, "required": name in body.get("required", []),
                         "description": field.get("description", ""), "type": _type_words(field)}
                        for name, field in body.get("properties", {}).items()
                    ],
                    "answers": [
                        {"status": status, "description": answer.get("description", "")}
                        for status, answer in sorted(operation.get("responses", {}).items())
                    ],
                }
            )  # fmt: skip
    return found


def _type_words(field: dict[str, Any]) -> str:
    if "enum" in field:
        return "one of " + ", ".join(str(v) for v in field["enum"])
    kinds = [field.get("type")] if "type" in field else [f.get("type") for f in field.get("anyOf", [])]
    words = {"string": "text", "number": "number", "integer": "whole number", "boolean": "true or false",
             "array": "list", "null": None}  # fmt: skip
    return " or ".join(w for k in kinds if (w := words.get(str(k), str(k))))
