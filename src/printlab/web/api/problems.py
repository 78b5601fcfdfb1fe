"""The API's one error shape: RFC 9457 problem details (application/problem+json).

Every /api/v1 answer that is not a success is one of these: `type` (about:blank: the status says what
kind of problem it is), `title` (the status's standard phrase), `status`, `detail` (what went wrong, in a
sentence a client's developer can act on) and, when a request's fields were refused, `errors` with a
message per field.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Response, json
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticError

MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field("about:blank", description="A URI reference naming the kind of problem.")
    title: str = Field(description="The HTTP status's standard phrase.")
    status: int = Field(ge=400, le=599, description="The HTTP status code.")
    detail: str = Field(description="What went wrong in this request, in words.")
    errors: dict[str, str] | None = Field(
        None, description="For refused fields (422): a message for each field, by its name."
    )


def problem(
    status: int, detail: str, *, errors: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> Response:
    """A problem-details answer with `status`."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or HTTPStatus(status).description,
    }
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _field_name(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location) or "body"


def from_validation(error: PydanticError) -> Response:
    """A request whose query, path, headers or body didn't fit the document: 422 with a message per field."""
    errors: dict[str, str] = {}
    for item in error.errors(include_url=False, include_input=False):
        errors.setdefault(_field_name(tuple(item.get("loc") or ())), str(item.get("msg") or "Not usable."))
    return problem(422, "Some of the request's fields can't be used; see errors.", errors=errors)
