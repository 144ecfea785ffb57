"""Knowledge-graph and ingestion-job endpoints: entities and jobs through ``kms.knowledge.services``,
nodes, neighbours and paths read from the graph store."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from kms.api.auth import may_read_customer_data
from kms.api.base import ApiView, valid_body, valid_query
from kms.api.errors import NotFound
from kms.api.serializers import ErrorResponse
from kms.catalogue.services import product_ids
from kms.knowledge import services as knowledge
from kms.knowledge.tasks import start_ingestion

from . import serializers as api

USER_PREFIX = "user:"


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


class EntityList(ApiView):
    @extend_schema(parameters=[api.EntityQuery], responses=api.EntitySerializer(many=True))
    def get(self, request):
        """Entities whose name or alias is ``name`` (case-insensitive), optionally of one ``type``."""
        q = valid_query(api.EntityQuery, request)
        entities = [knowledge.entity_dict(e) for e in knowledge.entities_named(q["name"], q.get("type"))]
        return Response(api.EntitySerializer(entities, many=True).data)


class GraphNode(GraphView):
    @extend_schema(responses={200: api.NodeResponse, 503: ErrorResponse})
    def get(self, request, uid: str):
        """A node of the graph by uid (product:…, user:…, brand:…, category:…, material:…)."""
        props = _graph_read(lambda store, uid: store.node(uid), uid=uid)
        if props is None:
            raise NotFound("uid", uid)
        return Response(api.NodeResponse({"uid": uid, "properties": props}).data)


class GraphNeighbours(GraphView):
    @extend_schema(parameters=[api.NeighboursQuery], responses={200: api.NeighboursResponse, 503: ErrorResponse})
    def get(self, request, uid: str):
        q = valid_query(api.NeighboursQuery, request)
        types = [t.strip() for t in q.get("rel", "").split(",") if t.strip()] or None

        def read(store, uid):
            if store.node(uid) is None:
                raise NotFound("uid", uid)
            rows = store.neighbours(uid, limit=q["limit"], rel_types=types)
            return [r for r in rows if not str(r["uid"]).startswith(USER_PREFIX)] if self.hides_users() else rows

        return Response(api.NeighboursResponse({"uid": uid, "neighbours": _graph_read(read, uid=uid)}).data)


class GraphPaths(GraphView):
    @extend_schema(parameters=[api.PathQuery], responses={200: api.PathsResponse, 503: ErrorResponse})
    def get(self, request):
        """Shortest paths (up to ``max_hops`` relationships) between two nodes."""
        q = valid_query(api.PathQuery, request)

        def read(store, src, dst):
            for name, uid in (("src", src), ("dst", dst)):
                if store.node(uid) is None:
                    raise NotFound(name, uid)
            paths = store.paths(src, dst, max_hops=q["max_hops"], limit=q["limit"])
            if self.hides_users():
                paths = [p for p in paths if not any(str(n["uid"]).startswith(USER_PREFIX) for n in p["nodes"])]
            return paths

        paths = _graph_read(read, src=q["src"], dst=q["dst"])
        return Response(api.PathsResponse({"src": q["src"], "dst": q["dst"], "paths": paths}).data)


# --- ingestion jobs -----------------------------------------------------------------------------
class IngestionJobs(ApiView):
    @extend_schema(responses=api.JobSerializer(many=True))
    def get(self, request):
        return Response(api.JobSerializer([knowledge.job_progress(j) for j in knowledge.recent_jobs()], many=True).data)

    @extend_schema(request=api.IngestRequest, responses={202: api.JobSerializer})
    def post(self, request):
        """Start ingestion of some products (by id) or of the whole catalogue."""
        data = valid_body(api.IngestRequest, request) if request.data else {"force": False}
        ids = data.get("products")
        pks = None
        if ids is not None:
            pks, missing = product_ids(ids)
            if missing:
                raise exceptions.ValidationError({"products": [f"unknown product ids: {', '.join(missing[:10])}"]})
        job = start_ingestion(pks, force=data["force"])
        job.refresh_from_db()
        return Response(api.JobSerializer(knowledge.job_progress(job)).data, status=status.HTTP_202_ACCEPTED)


class IngestionJobDetail(ApiView):
    @extend_schema(responses=api.JobSerializer)
    def get(self, request, job_id: int):
        job = knowledge.find_job(job_id)
        if job is None:
            raise NotFound("job_id", job_id)
        return Response(api.JobSerializer(knowledge.job_progress(job)).data)
