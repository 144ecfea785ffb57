"""One machine-readable error shape: {"error": {"code", "message", "fields"}}.

``fields`` maps a field path (``k``, ``body``, ``products.3.title``) to its messages, so a client
can point at what was wrong. Unexpected exceptions still answer in this shape (code
``server_error``, logged with their traceback) instead of Django's HTML page: raised in a view,
through ``exception_handler``; raised after the view (rendering the answer, a middleware), through
``server_error``, the project's ``handler500``.
"""
import logging

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from .serializers import ErrorResponse

log = logging.getLogger(__name__)


def flatten(data, prefix: str = "") -> dict[str, list[str]]:
    """Nested serializer errors as {"a.0.b": ["message", ...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list) and any(isinstance(v, (dict, list)) for v in data):
        for n, value in enumerate(data):
            if value:
                out.update(flatten(value, f"{prefix}.{n}" if prefix else str(n)))
    else:
        messages = data if isinstance(data, list) else [data]
        out[prefix or "non_field_errors"] = [str(m) for m in messages]
    return out


def _code(exc) -> str:
    if isinstance(exc, Http404):
        return "not_found"
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    return getattr(exc, "default_code", "error")


def exception_handler(exc, context):
    response = drf_handler(exc, context)
    if response is None and isinstance(exc, RequestDataTooBig):
        return error_response(str(exc), {"body": [str(exc)]}, code="body_too_large", status_code=413)
    if response is None and isinstance(exc, SuspiciousOperation):  # Django answers these with a 400 too
        return error_response("bad request", code="bad_request")
    if response is None:
        log.exception("unhandled error in %s", context.get("view").__class__.__name__, exc_info=exc)
        return error_response("internal error", code="server_error",
                              status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)
    data = response.data
    fields: dict[str, list[str]] = {}
    if isinstance(data, dict) and set(data) == {"detail"}:
        message = str(data["detail"])
    else:
        fields = flatten(data)
        message = "; ".join(f"{k}: {v[0]}" for k, v in list(fields.items())[:3]) or "invalid request"
    if isinstance(exc, exceptions.ParseError) and not fields:
        fields = {"body": [message]}
    response.data = error_body(_code(exc), message, fields)
    return response


def error_response(message: str, fields: dict | None = None, code: str = "invalid",
                   status_code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    fields = {k: (v if isinstance(v, list) else [v]) for k, v in (fields or {}).items()}
    return Response(error_body(code, message, fields), status=status_code)


def error_body(code: str, message: str, fields: dict[str, list[str]]) -> dict:
    """The one error shape, rendered by its serializer (the schema's ``ErrorResponse``)."""
    return ErrorResponse({"error": {"code": code, "message": message, "fields": fields}}).data


class NotFound(exceptions.NotFound):
    """A 404 that names the path parameter that matched nothing."""

    def __init__(self, field: str, value):
        super().__init__({field: [f"no {field.replace('_', ' ')} {value!r}"]})


def server_error(request):
    """``handler500``: an API path gets the error shape as JSON, anything else Django's page.
    Django has logged the exception (``django.request``) before calling this."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "internal error", {}), status=500)
    return defaults.server_error(request)
