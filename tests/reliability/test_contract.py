"""The schema is what runs (issue #15.5): one real, successful request per documented operation
against the package's world (ingested products, a trained model, the graph store), each answer
checked with the fuzzer's checks (tests/reliability/test_fuzz.py: status code, content type, body
against the OpenAPI schema) and for keys the schema does not declare. The serving read paths build
their answers as dicts for speed (kms/api/serving.py); their answers must also be exactly what
their response serializer renders."""
from __future__ import annotations

import json

from kgschema import BRAND
from rest_framework.renderers import JSONRenderer

from kms.api.serializers import PingResponse
from kms.recs.api.serializers import PopularResponse, RecommendationResponse, SimilarResponse
from kms.search.api.serializers import SearchResponse

from tests.reliability.test_fuzz import CHECKS, schema

RENDERED_AS_DICTS = {  # operation -> the response serializer its hand-built answer must equal
    ("GET", "/api/v1/ping"): PingResponse,
    ("GET", "/api/v1/users/{user_id}/recommendations"): RecommendationResponse,
    ("GET", "/api/v1/products/{product_id}/similar"): SimilarResponse,
    ("GET", "/api/v1/popular"): PopularResponse,
    ("GET", "/api/v1/search"): SearchResponse,
}


def steps(w, ctx: dict) -> list[tuple]:
    """(method, path, path parameters, query, body, status), in order: later ones use what earlier
    ones created (``ctx``). The database is rolled back with the test's transaction; graph-store
    writes wait for a commit (outbox, ingestion), so none happen here."""
    p0, u0 = w.products[0], w.users[0]
    return [
        ("GET", "/api/v1/ping", {}, {}, None, 200),
        ("GET", "/api/v1/products", {}, {"page_size": 2}, None, 200),
        ("POST", "/api/v1/products", {}, {}, [{"external_id": "contract-1", "title": "Contract staples",
                                                "categories": "Tools, Staples"}, {"external_id": 7}], 202),
        ("GET", "/api/v1/products/{product_id}", {"product_id": p0}, {}, None, 200),
        ("PUT", "/api/v1/products/{product_id}", {"product_id": "contract-1"}, {}, {"title": "Staples, 1000"}, 200),
        ("PATCH", "/api/v1/products/{product_id}", {"product_id": "contract-1"}, {}, {"brand": "Acme"}, 200),
        ("GET", "/api/v1/products/{product_id}/similar", {"product_id": p0}, {"k": 5, "user": u0}, None, 200),
        ("GET", "/api/v1/users", {}, {"page_size": 2}, None, 200),
        ("POST", "/api/v1/users", {}, {}, {"external_id": "contract-u"}, 201),
        ("GET", "/api/v1/users/{user_id}", {"user_id": u0}, {}, None, 200),
        ("PUT", "/api/v1/users/{user_id}", {"user_id": "contract-u"}, {}, {"external_id": "contract-u2"}, 200),
        ("PATCH", "/api/v1/users/{user_id}", {"user_id": "contract-u2"}, {}, {"external_id": "contract-u3"}, 200),
        ("POST", "/api/v1/events", {}, {}, [ctx["event"], {"user": "contract-u3", "product": "no-such-product"}], 202),
        ("DELETE", "/api/v1/users/{user_id}/events", {"user_id": "contract-u3"}, {}, None, 200),
        ("GET", "/api/v1/users/{user_id}/recommendations", {"user_id": u0}, {"k": 5, "explain": "true"}, None, 200),
        ("GET", "/api/v1/popular", {}, {"k": 5}, None, 200),
        ("GET", "/api/v1/search", {}, {"q": ctx["query"], "user": u0, "k": 5}, None, 200),
        ("GET", "/api/v1/graph/entities", {}, {"name": ctx["entity"]}, None, 200),
        ("GET", "/api/v1/graph/nodes/{uid}", {"uid": f"product:{p0}"}, {}, None, 200),
        ("GET", "/api/v1/graph/nodes/{uid}/neighbours", {"uid": f"product:{p0}"}, {}, None, 200),
        ("GET", "/api/v1/graph/paths", {}, {"src": f"user:{u0}", "dst": f"product:{ctx['bought']}"}, None, 200),
        ("GET", "/api/v1/jobs/ingest", {}, {}, None, 200),
        ("POST", "/api/v1/jobs/ingest", {}, {}, {"products": [p0]}, 202),
        ("GET", "/api/v1/jobs/ingest/{job_id}", lambda: {"job_id": ctx["job"]}, {}, None, 200),
        ("GET", "/api/v1/jobs/train", {}, {}, None, 200),
        ("POST", "/api/v1/jobs/train", {}, {}, {"params": {"preset": "fast"}}, 202),
        ("GET", "/api/v1/jobs/train/{version_id}", {"version_id": w.version_id}, {}, None, 200),
        ("POST", "/api/v1/experiments", {}, {}, {"name": "contract", "variants": [{"version": w.version_id}]}, 201),
        ("GET", "/api/v1/experiments", {}, {}, None, 200),
        ("GET", "/api/v1/experiments/{experiment_id}", lambda: {"experiment_id": ctx["experiment"]}, {}, None, 200),
        ("GET", "/api/v1/experiments/{experiment_id}/results", lambda: {"experiment_id": ctx["experiment"]}, {},
         None, 200),
        ("POST", "/api/v1/experiments/{experiment_id}/stop", lambda: {"experiment_id": ctx["experiment"]}, {}, {}, 200),
        ("POST", "/api/v1/experiments/{experiment_id}/promote", lambda: {"experiment_id": ctx["experiment"]}, {},
         {"arm": "variant-1"}, 200),
        ("POST", "/api/v1/experiments/{experiment_id}/rollback", lambda: {"experiment_id": ctx["experiment"]}, {},
         {}, 200),
        ("DELETE", "/api/v1/users/{user_id}", {"user_id": "contract-u3"}, {}, None, 204),
        ("DELETE", "/api/v1/products/{product_id}", {"product_id": "contract-1"}, {}, None, 204),
    ]


def undeclared(body, node: dict, components: dict, where: str = "$") -> list[str]:
    """Keys of ``body`` that its schema ``node`` does not declare (spectacular's objects allow any)."""
    while "$ref" in node or ("allOf" in node and len(node["allOf"]) == 1):
        node = components[node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node["allOf"][0]
    for key in ("oneOf", "anyOf"):
        if key in node:
            options = [undeclared(body, option, components, where) for option in node[key]]
            return min(options, key=len)
    if isinstance(body, dict) and "properties" in node:
        found = [f"{where}.{k}" for k in body if k not in node["properties"]]
        for k, v in body.items():
            if k in node["properties"]:
                found += undeclared(v, node["properties"][k], components, f"{where}.{k}")
        return found
    if isinstance(body, list) and "items" in node:
        return [f for n, v in enumerate(body) for f in undeclared(v, node["items"], components, f"{where}[{n}]")]
    return []


def test_every_operation_answers_as_documented(live):
    from kms.catalogue.models import Product
    from kms.events.models import Interaction
    from kms.knowledge.models import Entity

    openapi = schema.raw_schema
    components = openapi["components"]["schemas"]
    stored = Interaction.objects.filter(user__external_id=live.users[0]).select_related("user", "product").first()
    ctx = {"event": {"user": stored.user.external_id, "product": stored.product.external_id, "type": stored.type,
                     "event_id": stored.event_id},  # a duplicate: nothing new reaches the graph store, which
           # the test's rollback would not undo (eagerly, new events are written there at once)
           "query": Product.objects.get(external_id=live.products[0]).title.split()[0],
           "entity": Entity.objects.filter(type=BRAND).values_list("name", flat=True).first(),
           "bought": stored.product.external_id}
    assert ctx["entity"] and ctx["bought"]
    headers = live.headers("write")
    done, wrong = set(), []
    for method, path, path_parameters, query, body, status in steps(live, ctx):
        operation = schema[path][method]
        kwargs = {"media_type": "application/json", "body": body} if body is not None else {}
        case = operation.Case(path_parameters=path_parameters() if callable(path_parameters) else path_parameters,
                              query=query, **kwargs)
        response = case.call(headers=headers)
        assert response.status_code == status, (method, path, response.status_code, response.text[:500])
        case.validate_response(response, checks=CHECKS, headers=headers)  # raises on a violation
        done.add((method, path))
        if status == 204:
            continue
        answer = response.json()
        documented = openapi["paths"][path][method.lower()]["responses"][str(status)]["content"]["application/json"]
        wrong += [f"{method} {path}: {k}" for k in undeclared(answer, documented["schema"], components)]
        if (method, path) in RENDERED_AS_DICTS:
            rendered = json.loads(JSONRenderer().render(RENDERED_AS_DICTS[method, path](answer).data))
            if rendered != answer:
                wrong.append(f"{method} {path}: not what its serializer renders: {answer} != {rendered}")
        if path == "/api/v1/jobs/ingest" and method == "POST":
            ctx["job"] = answer["id"]
        if path == "/api/v1/experiments" and method == "POST":
            ctx["experiment"] = answer["id"]
        if path.endswith(("/recommendations", "/similar", "/search", "/neighbours")):
            assert answer["items" if "neighbours" not in path else "neighbours"], (path, answer)
        if path == "/api/v1/graph/paths":
            assert answer["paths"], answer
    assert not wrong, wrong
    every = {(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())}
    assert done == every, f"operations without a contract request: {sorted(every - done)}"


def test_undeclared_keys_are_found():
    components = {"Item": {"type": "object", "properties": {"a": {"type": "integer"}}}}
    node = {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
                                             "extra": {"allOf": [{"$ref": "#/components/schemas/Item"}], "nullable": True}}}
    assert undeclared({"items": [{"a": 1}], "extra": None}, node, components) == []
    assert undeclared({"items": [{"a": 1, "b": 2}], "c": 3}, node, components) == ["$.c", "$.items[0].b"]
