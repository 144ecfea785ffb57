"""OpenAPI extensions: document the API-key header scheme (imported from ApiConfig.ready)."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "kms.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Api-Key <secret>` (or the `X-API-Key: <secret>` header). Read keys may GET; "
                               "writes need a key with the write scope."}
