"""The OpenAPI 3 document generates without warnings and validates."""
import io

import pytest
import yaml
from django.core.management import call_command


def test_openapi_schema_validates(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), stderr=io.StringIO())
    schema = yaml.safe_load(out.read_text())
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for p in ["/api/v1/products", "/api/v1/products/{product_id}", "/api/v1/products/{product_id}/similar",
              "/api/v1/users", "/api/v1/users/{user_id}", "/api/v1/users/{user_id}/events",
              "/api/v1/users/{user_id}/recommendations", "/api/v1/events", "/api/v1/popular", "/api/v1/search",
              "/api/v1/graph/entities", "/api/v1/graph/nodes/{uid}", "/api/v1/graph/nodes/{uid}/neighbours",
              "/api/v1/graph/paths", "/api/v1/jobs/ingest", "/api/v1/jobs/train"]:
        assert p in paths, p
    assert "ApiKey" in schema["components"]["securitySchemes"]


@pytest.mark.django_db
def test_swagger_ui_and_schema_served(client):
    assert client.get("/api/schema").status_code == 200
    assert client.get("/api/docs").status_code == 200


def test_every_error_answer_is_documented_as_the_error_shape(tmp_path):
    """A 4xx/5xx answer is always ``{"error": …}`` (kms.api.errors); the schema must say so, or a
    client validating against it rejects real answers (the experiments' 409s once named Experiment)."""
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out), stderr=io.StringIO())
    wrong = []
    for path, operations in yaml.safe_load(out.read_text())["paths"].items():
        for method, operation in operations.items():
            for code, response in operation.get("responses", {}).items():
                if int(code) < 400:
                    continue
                refs = {c.get("schema", {}).get("$ref") for c in response.get("content", {}).values()}
                if refs != {"#/components/schemas/ErrorResponse"}:
                    wrong.append(f"{method.upper()} {path} {code}: {refs or 'no content'}")
    assert not wrong, wrong
