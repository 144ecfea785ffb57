"""OpenAPI extensions: the API-key header scheme (imported from ApiConfig.ready), and an AutoSchema
that documents the error answers every operation can give, in the one error shape."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "kms.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Api-Key <secret>` (or the `X-API-Key: <secret>` header). Catalogue reads are "
                               "open by default; customer data (users, their recommendations, personalised "
                               "search, user nodes of the graph) needs a key, a read key may GET; writes "
                               "need a key with the write scope."}


ERRORS = {
    "400": "invalid request: `fields` names what was wrong",
    "401": "missing or invalid API key",
    "403": "the key lacks the write scope",
    "404": "the path names nothing",
    "413": "request body too large",
    "415": "unsupported Content-Type (use application/json or JSON Lines)",
    "429": "rate limit of this key exceeded",
}


class ApiSchema(AutoSchema):
    """Adds the error responses (``{"error": {"code", "message", "fields"}}``) to what a view declares:
    400 malformed request, 401 bad or missing key, 429 throttled on every operation; 403 (scope) on
    writes; 404 where the path names a resource; 413/415 where there is a body. A view declares
    any other error status (409, 503) itself with ``extend_schema(responses=...)``."""

    def get_operation(self, *args, **kwargs):
        # After extend_schema's overrides: they replace get_response_serializers, not this.
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        from .serializers import ErrorResponse

        codes = [400, 401, 429]
        if self.method not in permissions.SAFE_METHODS:
            codes.append(403)
        if "{" in self.path:
            codes.append(404)
        if self.method in ("POST", "PUT", "PATCH"):
            codes += [413, 415]
        responses = operation.setdefault("responses", {})
        for code in map(str, codes):
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorResponse, description=ERRORS[code]), code)
        operation["responses"] = dict(sorted(responses.items()))
        return operation
