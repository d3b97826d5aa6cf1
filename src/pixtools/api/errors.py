"""Every error answer, built in one place: the body ``{"status_code", "detail", "extra"}``.

The use cases refuse with ``pixtools.jobs.errors.JobError`` (a ``Problem``, never a
status); the request parsing here refuses with Litestar's ``HTTPException``. Both reach the
client through ``EXCEPTION_HANDLERS``; middleware that answers before any handler runs
(rate limit, upload slots) writes the same body with ``error_json``.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers import BaseRouteHandler
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from pixtools.jobs.errors import JobError, Problem

log = logging.getLogger(__name__)

STATUS: dict[Problem, int] = {
    Problem.INVALID: 400,
    Problem.NOT_FOUND: 404,
    Problem.CONFLICT: 409,
    Problem.TOO_LARGE: 413,
    Problem.UNSUPPORTED: 415,
    Problem.UNPROCESSABLE: 422,
}


def error_body(status: int, detail: str, extra: Any = None) -> dict[str, Any]:
    """The error body every refusal carries."""
    return {"status_code": status, "detail": detail, "extra": extra}


def error_json(status: int, detail: str, extra: Any = None) -> bytes:
    """The error body as JSON bytes, for middleware that answers without Litestar."""
    return msgspec.json.encode(error_body(status, detail, extra))


def field_error(field: str, message: str, status: int = 400) -> HTTPException:
    """A request refused for one field, named at the head of the text and in ``extra``."""
    return HTTPException(status_code=status, detail=f"{field}: {message}", extra={"field": field})


def refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``' ``object_pairs_hook`` for request bodies: a key repeated in one
    object is 400 ``body:`` (the decoders keep the last one silently)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise field_error("body", f"duplicate key {key!r} in a JSON object")
        seen[key] = value
    return seen


async def single_valued_query(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard (after authentication): a query parameter of the route given more than once is
    400 naming it (Litestar would keep the last one silently: ``?queue=ml&queue=standard``
    on a purge must not pick one). Parameters the route does not take are not looked at."""
    for param in handler.parsed_fn_signature.parameters.values():
        definition = param.kwarg_definition
        if isinstance(definition, QueryParameter):
            name = definition.name or param.name
            if len(connection.query_params.getall(name, [])) > 1:
                raise field_error(name, "given more than once (give it once)")


def job_error(request: Request[Any, Any, Any], exc: JobError) -> Response[dict[str, Any]]:  # noqa: ARG001  Litestar's exception-handler signature
    """A use case's refusal, answered with its problem's status."""
    status = STATUS[exc.problem]
    return Response(error_body(status, exc.detail, exc.extra), status_code=status)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """Litestar's own refusals (and ours from request parsing) in the common body."""
    if exc.status_code >= 500 and exc.status_code != 503:
        log.error("server error on %s %s: %s", request.method, request.url.path, exc.detail)
    return Response(
        error_body(exc.status_code, exc.detail, exc.extra),
        status_code=exc.status_code,
        headers=exc.headers,
    )


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """No stack traces in bodies: log it, answer a plain 500."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response(
        error_body(HTTP_500_INTERNAL_SERVER_ERROR, "Internal Server Error"),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    JobError: job_error,
    HTTPException: http_error,
    Exception: internal_error,
}
