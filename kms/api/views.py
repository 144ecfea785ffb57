"""Thin REST views: validate input, call a service, shape the output."""
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from kms.catalogue.models import Product
from kms.catalogue.services import upsert_products
from kms.events.services import record_events
from kms.knowledge import services as knowledge
from kms.knowledge.models import IngestionJob
from kms.recs import services as recs

from .errors import error_response
from .serializers import (JobSerializer, ProductSerializer, RecommendationQuery, RecommendationResponse,
                          SimilarQuery)

MAX_BULK = 5000


def _as_list(data):
    return data if isinstance(data, list) else [data]


class ProductPagination(CursorPagination):
    page_size = 50
    ordering = "id"


class ProductList(generics.ListAPIView):
    """Products, cursor-paginated; POST upserts one product or a JSON array of them."""

    serializer_class = ProductSerializer
    pagination_class = ProductPagination

    def get_queryset(self):
        qs = Product.objects.all()
        brand = self.request.query_params.get("brand")
        category = self.request.query_params.get("category")
        if brand:
            qs = qs.filter(brand__iexact=brand)
        if category:
            qs = qs.filter(category_path__icontains=category)
        return qs

    @extend_schema(request=ProductSerializer(many=True), responses={202: dict})
    def post(self, request):
        records = _as_list(request.data)
        if len(records) > MAX_BULK:
            return error_response(f"at most {MAX_BULK} products per request", {"non_field_errors": ["too many"]})
        result = upsert_products(records)
        if not result.changed and result.errors:
            return error_response("no valid product", {"products": result.errors})
        job = knowledge.start_ingestion(result.changed) if result.changed else None
        body = result.as_dict() | {"ingestion_job": job.pk if job else None}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ProductDetail(generics.RetrieveAPIView):
    serializer_class = ProductSerializer
    lookup_field = "external_id"
    lookup_url_kwarg = "product_id"
    queryset = Product.objects.all()


class EventList(APIView):
    @extend_schema(request=dict, responses={202: dict})
    def post(self, request):
        records = _as_list(request.data)
        if len(records) > MAX_BULK:
            return error_response(f"at most {MAX_BULK} events per request", {"non_field_errors": ["too many"]})
        result = record_events(records)
        if not result.created and not result.duplicates and result.errors:
            return error_response("no valid event", {"events": result.errors})
        return Response(result.as_dict(), status=status.HTTP_202_ACCEPTED)


class UserRecommendations(APIView):
    @extend_schema(parameters=[RecommendationQuery], responses=RecommendationResponse)
    def get(self, request, user_id: str):
        query = RecommendationQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        return Response(recs.recommend_for_user(user_id, k=q["k"], exclude_seen=q["exclude_seen"],
                                                category=q.get("category") or None))


class SimilarProducts(APIView):
    @extend_schema(parameters=[SimilarQuery], responses=dict)
    def get(self, request, product_id: str):
        query = SimilarQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        get_object_or_404(Product, external_id=product_id)
        return Response(recs.similar_products(product_id, query.validated_data["k"]))


class IngestionJobs(APIView):
    @extend_schema(request=dict, responses={202: JobSerializer})
    def post(self, request):
        ids = request.data.get("products") if isinstance(request.data, dict) else None
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
            return error_response("products must be a list of product ids", {"products": ["invalid"]})
        pks = list(Product.objects.filter(external_id__in=ids).values_list("id", flat=True)) if ids else None
        job = knowledge.start_ingestion(pks, force=bool(request.data.get("force", False)))
        job.refresh_from_db()
        return Response(knowledge.job_progress(job), status=status.HTTP_202_ACCEPTED)


class IngestionJobDetail(APIView):
    @extend_schema(responses=JobSerializer)
    def get(self, request, job_id: int):
        return Response(knowledge.job_progress(get_object_or_404(IngestionJob, pk=job_id)))


@extend_schema(parameters=[OpenApiParameter("k", int)])
class Popular(APIView):
    def get(self, request):
        query = SimilarQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        category = request.query_params.get("category") or None
        items = recs._attach_products(recs.popular_products(query.validated_data["k"], category))
        return Response({"items": items})
