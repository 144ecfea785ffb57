"""Product endpoints: thin callers of ``kms.catalogue.services`` (and the ingestion it starts)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response

from kms.api.base import ApiListView, ApiView, bulk_error_fields, bulk_records, valid_query
from kms.api.errors import NotFound, error_response
from kms.catalogue import services
from kms.catalogue.models import Product
from kms.curation.tasks import deliver_outbox_after_commit
from kms.knowledge.models import IngestionJob
from kms.knowledge.tasks import start_ingestion

from . import serializers as api


def _upsert_and_ingest(records: list) -> tuple[services.UpsertResult, IngestionJob | None]:
    result = services.upsert_products(records)
    job = start_ingestion(result.changed) if result.changed else None
    return result, job


def _product(product_id: str) -> Product:
    product = services.find_product(product_id)
    if product is None:
        raise NotFound("product_id", product_id)
    return product


class ProductList(ApiListView):
    """Products (cursor-paginated, filter by ``brand``/``category``); POST upserts one product, a JSON
    array or JSON Lines (``application/x-ndjson``) and starts an ingestion job for the changed ones."""

    serializer_class = api.ProductSerializer

    def get_queryset(self):
        f = valid_query(api.ProductFilter, self.request)
        return services.product_list(brand=f.get("brand"), category=f.get("category"))

    @extend_schema(parameters=[api.ProductFilter])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=api.ProductWrite(many=True), responses={202: api.UpsertResponse})
    def post(self, request):
        records = bulk_records(request, "product")
        result, job = _upsert_and_ingest(records)
        if not result.changed and not result.unchanged and result.errors:
            return error_response("no valid product", bulk_error_fields(result.errors))
        return Response(api.UpsertResponse(result.as_dict() | {"ingestion_job": job.pk if job else None}).data,
                        status=status.HTTP_202_ACCEPTED)


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
        body = api.ProductWrite(data=record)
        body.is_valid(raise_exception=True)
        _, job = _upsert_and_ingest([body.validated_data])
        return Response(api.ProductChangeResponse(
            {"product": _product(product_id), "ingestion_job": job.pk if job else None}).data)

    @extend_schema(request=api.ProductWrite, responses=api.ProductChangeResponse)
    def put(self, request, product_id: str):
        return self._write(request, product_id, partial=False)

    @extend_schema(request=api.ProductWrite(partial=True), responses=api.ProductChangeResponse)
    def patch(self, request, product_id: str):
        return self._write(request, product_id, partial=True)

    @extend_schema(responses={204: None})
    def delete(self, request, product_id: str):
        services.delete_product(_product(product_id))
        deliver_outbox_after_commit()
        return Response(status=status.HTTP_204_NO_CONTENT)
