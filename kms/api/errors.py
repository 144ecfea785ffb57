"""One machine-readable error shape: {"error": {"code", "message", "fields"}}."""
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler


def exception_handler(exc, context):
    response = drf_handler(exc, context)
    if response is None:
        return None
    data = response.data
    fields = {}
    message = ""
    if isinstance(data, dict):
        if "detail" in data and len(data) == 1:
            message = str(data["detail"])
        else:
            fields = {k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in data.items()}
            message = "invalid request"
    elif isinstance(data, list):
        message = "; ".join(str(m) for m in data)
    code = getattr(exc, "default_code", "error")
    if hasattr(exc, "get_codes"):
        codes = exc.get_codes()
        if isinstance(codes, str):
            code = codes
    response.data = {"error": {"code": code, "message": message, "fields": fields}}
    return response


def error_response(message: str, fields: dict | None = None, code: str = "invalid",
                   status_code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"error": {"code": code, "message": message, "fields": fields or {}}}, status=status_code)
