"""Product request and response shapes (also the OpenAPI schema)."""
from rest_framework import serializers

from kms.catalogue.models import Product


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["external_id", "title", "description", "brand", "category_path", "attributes",
                  "content_hash", "created_at", "updated_at"]
        read_only_fields = ["content_hash", "created_at", "updated_at"]


class ProductWrite(serializers.Serializer):
    """Documentation of a product body; validation is ``kms.catalogue.services.clean_product``."""

    external_id = serializers.CharField(max_length=128)
    title = serializers.CharField(max_length=2000)
    description = serializers.CharField(required=False, allow_blank=True)
    brand = serializers.CharField(required=False, allow_blank=True, max_length=255)
    category_path = serializers.ListField(child=serializers.CharField(max_length=255), required=False)
    attributes = serializers.DictField(required=False)


class ProductFilter(serializers.Serializer):
    brand = serializers.CharField(required=False, max_length=255)
    category = serializers.CharField(required=False, max_length=255)


class RecordError(serializers.Serializer):
    index = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True, required=False)
    errors = serializers.DictField(child=serializers.CharField())


class UpsertResponse(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    errors = RecordError(many=True)
    ingestion_job = serializers.IntegerField(allow_null=True)


class ProductChangeResponse(serializers.Serializer):
    product = ProductSerializer()
    ingestion_job = serializers.IntegerField(allow_null=True)
