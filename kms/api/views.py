"""Thin REST views: validate input, call a service, shape the output."""
from __future__ import annotations

from urllib.parse import unquote_to_bytes

from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from kms.catalogue.models import Product
from kms.catalogue.services import ProductValidationError, clean_product, delete_product, upsert_products
from kms.curation.tasks import deliver_outbox_after_commit
from kms.events.models import ShopUser
from kms.events.services import delete_user_events, record_events, rename_user
from kms.events.tasks import deliver_to_graph
from kms.recs.services import forget_user
from kms.knowledge import services as knowledge
from kms.knowledge.tasks import start_ingestion
from kms.knowledge.models import Entity, IngestionJob
from kms.recs.models import ModelVersion
from kms.search import search

from . import serving
from .auth import may_read_customer_data
from . import serializers as api
from .errors import NotFound, error_response
from .parsers import JSONLinesParser, JSONParser, NDJSONParser
from .schema import ApiSchema

MAX_BULK = 5000
PARSERS = [JSONParser, NDJSONParser, JSONLinesParser]


def _records(request, what: str) -> list:
    """A bulk body: one JSON object, an array, or JSON Lines; 1..MAX_BULK records."""
    data = request.data
    if not data:
        raise exceptions.ValidationError({"body": [f"empty body: give a {what} object, an array or JSON Lines"]})
    records = data if isinstance(data, list) else [data]
    if len(records) > MAX_BULK:
        raise exceptions.ValidationError({"body": [f"at most {MAX_BULK} {what}s per request"]})
    return records


_VALID_QUERIES: dict[tuple, dict] = {}  # (serializer, query string) -> validated data
_VALID_QUERIES_MAX = 4096


def _query(serializer_class, request) -> dict:
    """The validated query parameters. Validation is a pure function of the query string, and the
    hot path's strings repeat (``k=20``), so valid results are kept: a DRF serializer costs more
    than the rest of a cached recommendation request. Invalid strings are validated every time."""
    key = (serializer_class, request.META.get("QUERY_STRING", ""))
    hit = _VALID_QUERIES.get(key)
    if hit is not None:
        return dict(hit)
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    if len(_VALID_QUERIES) >= _VALID_QUERIES_MAX:
        _VALID_QUERIES.clear()
    _VALID_QUERIES[key] = dict(query.validated_data)
    return dict(query.validated_data)


def _body(serializer_class, request) -> dict:
    if not isinstance(request.data, dict):
        raise exceptions.ValidationError({"body": ["must be a JSON object"]})
    body = serializer_class(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data


class Cursor(CursorPagination):
    page_size = 50
    ordering = "id"
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError({"cursor": ["invalid cursor"]})

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isdigit() and 0 < int(raw) <= self.max_page_size):
            raise exceptions.ValidationError({"page_size": [f"must be an integer from 1 to {self.max_page_size}"]})
        return super().get_page_size(request)


class CheckedInput:
    """Input the database cannot hold is a 400, not a 500: NUL in a path parameter (PostgreSQL text
    refuses it) and a query string that is not UTF-8 once percent-decoded."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication and permissions first
        for name, value in kwargs.items():
            if isinstance(value, str) and "\x00" in value:
                raise exceptions.ValidationError({name: ["must not contain NUL characters"]})
        query = request.META.get("QUERY_STRING", "")
        if "%" in query or not query.isascii():
            try:
                raw = unquote_to_bytes(query.encode("latin-1"))  # WSGI strings carry bytes as latin-1
            except UnicodeEncodeError:
                return
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise exceptions.ValidationError({"query": ["the query string is not valid UTF-8"]})


class ApiView(CheckedInput, APIView):
    parser_classes = PARSERS
    schema = ApiSchema()


class Ping(ApiView):
    """The cheapest DRF endpoint (auth, throttle, JSON rendering): the ceiling for the benchmark."""

    @extend_schema(responses=api.PingResponse)
    def get(self, request):
        return Response({"status": "ok"})


# --- products -----------------------------------------------------------------------------------
def _upsert_and_ingest(records: list) -> tuple[object, IngestionJob | None]:
    result = upsert_products(records)
    job = start_ingestion(result.changed) if result.changed else None
    return result, job


class ProductList(CheckedInput, generics.ListAPIView):
    """Products (cursor-paginated, filter by ``brand``/``category``); POST upserts one product, a JSON
    array or JSON Lines (``application/x-ndjson``) and starts an ingestion job for the changed ones."""

    serializer_class = api.ProductSerializer
    pagination_class = Cursor
    parser_classes = PARSERS
    schema = ApiSchema()

    def get_queryset(self):
        f = _query(api.ProductFilter, self.request)
        qs = Product.objects.only("external_id", "title", "description", "brand", "category_path", "attributes",
                                  "content_hash", "created_at", "updated_at")
        if f.get("brand"):
            qs = qs.filter(brand__iexact=f["brand"])
        if f.get("category"):
            qs = qs.filter(category_path__icontains=f["category"])
        return qs

    @extend_schema(parameters=[api.ProductFilter])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=api.ProductWrite(many=True), responses={202: api.UpsertResponse})
    def post(self, request):
        records = _records(request, "product")
        result, job = _upsert_and_ingest(records)
        if not result.changed and not result.unchanged and result.errors:
            fields = {f"{e['index']}.{k}": [v] for e in result.errors[:50] for k, v in e["errors"].items()}
            return error_response("no valid product", fields)
        return Response(result.as_dict() | {"ingestion_job": job.pk if job else None},
                        status=status.HTTP_202_ACCEPTED)


def _product(product_id: str) -> Product:
    product = Product.objects.filter(external_id=product_id).first()
    if product is None:
        raise NotFound("product_id", product_id)
    return product


class ProductDetail(ApiView):
    """One product. PUT replaces (or creates) it, PATCH changes the given fields; both re-ingest it."""

    @extend_schema(responses=api.ProductSerializer)
    def get(self, request, product_id: str):
        return Response(api.ProductSerializer(_product(product_id)).data)

    def _write(self, request, product_id: str, partial: bool):
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError({"body": ["must be a JSON object"]})
        given = request.data.get("external_id", product_id)
        if str(given) != product_id:
            raise exceptions.ValidationError({"external_id": ["must match the id in the URL"]})
        record = dict(request.data)
        if partial:
            current = _product(product_id)
            record = {"title": current.title, "description": current.description, "brand": current.brand,
                      "category_path": current.category_path, "attributes": current.attributes} | record
        record["external_id"] = product_id
        try:
            clean_product(record)
        except ProductValidationError as exc:
            raise exceptions.ValidationError({k: [v] for k, v in exc.errors.items()})
        _, job = _upsert_and_ingest([record])
        return Response({"product": api.ProductSerializer(_product(product_id)).data,
                         "ingestion_job": job.pk if job else None})

    @extend_schema(request=api.ProductWrite, responses=api.ProductChangeResponse)
    def put(self, request, product_id: str):
        return self._write(request, product_id, partial=False)

    @extend_schema(request=api.ProductWrite(partial=True), responses=api.ProductChangeResponse)
    def patch(self, request, product_id: str):
        return self._write(request, product_id, partial=True)

    @extend_schema(responses={204: None})
    def delete(self, request, product_id: str):
        delete_product(_product(product_id))
        deliver_outbox_after_commit()
        return Response(status=status.HTTP_204_NO_CONTENT)


class SimilarProducts(ApiView):
    @extend_schema(parameters=[api.SimilarForUserQuery], responses=api.SimilarResponse)
    def get(self, request, product_id: str):
        q = _query(api.SimilarForUserQuery, request)
        try:
            return Response(serving.similar(product_id, q["k"], q.get("user") or None))
        except serving.UnknownProduct:
            raise NotFound("product_id", product_id)


class Popular(ApiView):
    @extend_schema(parameters=[api.PopularQuery], responses=api.PopularResponse)
    def get(self, request):
        q = _query(api.PopularQuery, request)
        return Response({"items": serving.popular(q["k"], q.get("category") or None)})


# --- users and events ---------------------------------------------------------------------------
def _user(user_id: str) -> ShopUser:
    user = ShopUser.objects.filter(external_id=user_id).first()
    if user is None:
        raise NotFound("user_id", user_id)
    return user


class UserList(CheckedInput, generics.ListAPIView):
    """Shop users (cursor-paginated); POST registers one (they are also created by their first event)."""

    serializer_class = api.ShopUserSerializer
    pagination_class = Cursor
    parser_classes = PARSERS
    queryset = ShopUser.objects.all()
    schema = ApiSchema()
    customer_data = True  # reading needs a key unless KMS_PUBLIC_CUSTOMER_READ (kms.api.auth)

    @extend_schema(request=api.ShopUserWrite, responses={201: api.ShopUserSerializer, 409: api.ErrorResponse})
    def post(self, request):
        data = _body(api.ShopUserWrite, request)
        user, created = ShopUser.objects.get_or_create(external_id=data["external_id"])
        if not created:
            return error_response("user exists", {"external_id": ["a user with this id exists"]},
                                  code="conflict", status_code=status.HTTP_409_CONFLICT)
        return Response(api.ShopUserSerializer(user).data, status=status.HTTP_201_CREATED)


class UserDetail(ApiView):
    customer_data = True

    @extend_schema(responses=api.ShopUserSerializer)
    def get(self, request, user_id: str):
        user = _user(user_id)
        user.events = user.interactions.count()
        return Response(api.ShopUserSerializer(user).data)

    def _rename(self, request, user_id: str):
        user = _user(user_id)
        data = _body(api.ShopUserWrite, request)
        if data["external_id"] != user_id:
            if ShopUser.objects.filter(external_id=data["external_id"]).exists():
                return error_response("user exists", {"external_id": ["a user with this id exists"]},
                                      code="conflict", status_code=status.HTTP_409_CONFLICT)
            rename_user(user, data["external_id"])
            deliver_outbox_after_commit()
        return Response(api.ShopUserSerializer(user).data)

    @extend_schema(request=api.ShopUserWrite, responses={200: api.ShopUserSerializer, 409: api.ErrorResponse})
    def put(self, request, user_id: str):
        return self._rename(request, user_id)

    @extend_schema(request=api.ShopUserWrite, responses={200: api.ShopUserSerializer, 409: api.ErrorResponse})
    def patch(self, request, user_id: str):
        return self._rename(request, user_id)

    @extend_schema(responses={204: None})
    def delete(self, request, user_id: str):
        forget_user(_user(user_id).external_id)
        deliver_outbox_after_commit()
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserEvents(ApiView):
    customer_data = True

    @extend_schema(responses={200: api.DeletedResponse})
    def delete(self, request, user_id: str):
        """Erase the user's events from the database and the graph store (the user stays)."""
        _user(user_id)
        deleted = delete_user_events(user_id)
        deliver_outbox_after_commit()
        return Response({"deleted": deleted})


class EventList(ApiView):
    @extend_schema(request=api.EventWrite(many=True), responses={202: api.EventsResponse})
    def post(self, request):
        """Record one event, a JSON array or JSON Lines; idempotent on ``event_id``."""
        records = _records(request, "event")
        result = record_events(records)
        deliver_to_graph(result.interaction_ids)
        if not result.created and not result.duplicates and result.errors:
            fields = {f"{e['index']}.{k}": [v] for e in result.errors[:50] for k, v in e["errors"].items()}
            return error_response("no valid event", fields)
        return Response(result.as_dict(), status=status.HTTP_202_ACCEPTED)


class UserRecommendations(ApiView):
    customer_data = True

    @extend_schema(parameters=[api.RecommendationQuery], responses=api.RecommendationResponse)
    def get(self, request, user_id: str):
        """Top-k for a user; an unknown user gets cold-start results, not an error."""
        q = _query(api.RecommendationQuery, request)
        return Response(serving.recommend(user_id, q["k"], q.get("category") or None, q["exclude_seen"],
                                          q["explain"]))


# --- search -------------------------------------------------------------------------------------
class Search(ApiView):
    def customer_data(self, request) -> bool:
        return bool(request.query_params.get("user"))  # re-ranked by that user's history

    @extend_schema(parameters=[api.SearchQuery], responses=api.SearchResponse)
    def get(self, request):
        """Entities in the query (NLP), expanded through the graph, BM25 candidates, re-ranked for ``user``."""
        q = _query(api.SearchQuery, request)
        if not q["q"]:
            raise exceptions.ValidationError({"q": ["must not be blank"]})
        return Response(serving.search_list(search(q["q"], user=q.get("user") or None, k=q["k"]),
                                            q.get("user") or None))


# --- knowledge graph ----------------------------------------------------------------------------
class GraphUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "graph_unavailable"
    default_detail = "the graph store is not answering"


def _graph_read(fn, *args, **kwargs):
    from graph.schema import label_for_uid

    for name in ("uid", "src", "dst"):
        if name in kwargs:
            try:
                label_for_uid(kwargs[name])
            except ValueError:
                raise exceptions.ValidationError({name: ["must be a node uid such as product:42 or brand:stanley"]})
    try:
        from kms.graphstore import get_graph_store

        store = get_graph_store()
        if not store.ping():  # fail fast: reads would otherwise wait out the driver's retries
            raise GraphUnavailable()
        return fn(store, *args, **kwargs)
    except exceptions.APIException:
        raise
    except ValueError as exc:
        raise exceptions.ValidationError({"rel": [str(exc)]})
    except Exception:
        raise GraphUnavailable()


class GraphView(ApiView):
    """A user's node, and paths from or to one, are customer data; for a caller who may not read
    customer data, answers leave user nodes out (a product's neighbours include its buyers)."""

    def customer_data(self, request) -> bool:
        uids = [self.kwargs.get("uid"), request.query_params.get("src"), request.query_params.get("dst")]
        return any(isinstance(u, str) and u.startswith(USER_PREFIX) for u in uids)

    def hides_users(self) -> bool:
        return not may_read_customer_data(self.request)


USER_PREFIX = "user:"


def _entity_dict(e: Entity) -> dict:
    return {"uid": e.uid, "type": e.type, "name": e.name, "aliases": e.aliases, "status": e.status,
            "merged_into": e.merged_into.uid if e.merged_into_id else None}


class EntityList(ApiView):
    @extend_schema(parameters=[api.EntityQuery], responses=api.EntitySerializer(many=True))
    def get(self, request):
        """Entities whose name or alias is ``name`` (case-insensitive), optionally of one ``type``."""
        q = _query(api.EntityQuery, request)
        qs = Entity.objects.select_related("merged_into").filter(
            Q(name__iexact=q["name"]) | Q(aliases__icontains=q["name"]))
        if q.get("type"):
            qs = qs.filter(type=q["type"].upper())
        exact = [e for e in qs[:200] if e.name.lower() == q["name"].lower()
                 or any(a.lower() == q["name"].lower() for a in e.aliases)]
        return Response([_entity_dict(e) for e in exact[:50]])


class GraphNode(GraphView):
    @extend_schema(responses={200: api.NodeResponse, 503: api.ErrorResponse})
    def get(self, request, uid: str):
        """A node of the graph by uid (product:…, user:…, brand:…, category:…, material:…)."""
        props = _graph_read(lambda store, uid: store.node(uid), uid=uid)
        if props is None:
            raise NotFound("uid", uid)
        return Response({"uid": uid, "properties": props})


class GraphNeighbours(GraphView):
    @extend_schema(parameters=[api.NeighboursQuery], responses={200: api.NeighboursResponse, 503: api.ErrorResponse})
    def get(self, request, uid: str):
        q = _query(api.NeighboursQuery, request)
        types = [t.strip() for t in q.get("rel", "").split(",") if t.strip()] or None

        def read(store, uid):
            if store.node(uid) is None:
                raise NotFound("uid", uid)
            rows = store.neighbours(uid, limit=q["limit"], rel_types=types)
            return [r for r in rows if not str(r["uid"]).startswith(USER_PREFIX)] if self.hides_users() else rows

        return Response({"uid": uid, "neighbours": _graph_read(read, uid=uid)})


class GraphPaths(GraphView):
    @extend_schema(parameters=[api.PathQuery], responses={200: api.PathsResponse, 503: api.ErrorResponse})
    def get(self, request):
        """Shortest paths (up to ``max_hops`` relationships) between two nodes."""
        q = _query(api.PathQuery, request)

        def read(store, src, dst):
            for name, uid in (("src", src), ("dst", dst)):
                if store.node(uid) is None:
                    raise NotFound(name, uid)
            paths = store.paths(src, dst, max_hops=q["max_hops"], limit=q["limit"])
            if self.hides_users():
                paths = [p for p in paths if not any(str(n["uid"]).startswith(USER_PREFIX) for n in p["nodes"])]
            return paths

        return Response({"src": q["src"], "dst": q["dst"], "paths": _graph_read(read, src=q["src"], dst=q["dst"])})


# --- jobs ---------------------------------------------------------------------------------------
class IngestionJobs(ApiView):
    @extend_schema(responses=api.JobSerializer(many=True))
    def get(self, request):
        return Response([knowledge.job_progress(j) for j in IngestionJob.objects.order_by("-id")[:50]])

    @extend_schema(request=api.IngestRequest, responses={202: api.JobSerializer})
    def post(self, request):
        """Start ingestion of some products (by id) or of the whole catalogue."""
        data = _body(api.IngestRequest, request) if request.data else {"force": False}
        ids = data.get("products")
        pks = None
        if ids is not None:
            found = dict(Product.objects.filter(external_id__in=ids).values_list("external_id", "id"))
            missing = [i for i in ids if i not in found]
            if missing:
                raise exceptions.ValidationError({"products": [f"unknown product ids: {', '.join(missing[:10])}"]})
            pks = list(found.values())
        job = start_ingestion(pks, force=data["force"])
        job.refresh_from_db()
        return Response(knowledge.job_progress(job), status=status.HTTP_202_ACCEPTED)


class IngestionJobDetail(ApiView):
    @extend_schema(responses=api.JobSerializer)
    def get(self, request, job_id: int):
        job = IngestionJob.objects.filter(pk=job_id).first()
        if job is None:
            raise NotFound("job_id", job_id)
        return Response(knowledge.job_progress(job))


def _version_dict(v: ModelVersion) -> dict:
    return {"id": v.pk, "state": v.state, "params": v.params, "metrics": v.metrics, "history": v.history,
            "n_users": v.n_users, "n_items": v.n_items, "n_interactions": v.n_interactions,
            "train_seconds": v.train_seconds, "message": v.message, "created_at": v.created_at,
            "activated_at": v.activated_at}


class TrainingJobs(ApiView):
    @extend_schema(responses=api.ModelVersionSerializer(many=True))
    def get(self, request):
        """Model versions, newest first (a running training job is a version in state ``training``)."""
        return Response([_version_dict(v) for v in ModelVersion.objects.order_by("-id")[:50]])

    @extend_schema(request=api.TrainRequest, responses={202: api.TrainQueued, 409: api.ErrorResponse})
    def post(self, request):
        """Queue a training run: a model version in state ``queued`` (``GET /jobs/train/{version}``
        follows it), trained by the ``kms.recs.tasks.train`` task."""
        from kms.recs.tasks import queue_training

        data = _body(api.TrainRequest, request) if request.data else {"params": {}}
        try:
            version, task_id, result = queue_training(data["params"] or None)
        except Exception as exc:  # eager mode (no broker) runs it here; a failure is the job's, not the request's
            return error_response(f"training failed: {type(exc).__name__}: {exc}"[:500], code="training_failed",
                                  status_code=status.HTTP_409_CONFLICT)
        body = {"task_id": task_id, "version": version.pk, "state": result.state.lower() if result else "pending"}
        if result is not None and result.ready():
            body["result"] = result.result
        return Response(body, status=status.HTTP_202_ACCEPTED)


class TrainingJobDetail(ApiView):
    @extend_schema(responses=api.ModelVersionSerializer)
    def get(self, request, version_id: int):
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise NotFound("version_id", version_id)
        return Response(_version_dict(version))


@extend_schema(exclude=True)
class UnknownEndpoint(ApiView):
    """Any other path under /api/v1/: the JSON 404 of the error shape, not Django's HTML page."""

    def _404(self, request, *args, **kwargs):
        return error_response(f"no endpoint {request.path}", {"path": [request.path]}, code="not_found",
                              status_code=status.HTTP_404_NOT_FOUND)

    get = post = put = patch = delete = _404

    def get_permissions(self):
        return []
