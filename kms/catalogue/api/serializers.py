"""Product request and response shapes (also the OpenAPI schema). ``ProductWrite`` holds the rules
of a product record for every way in: the REST bodies, and through
``kms.catalogue.services.clean_product`` the JSONL/CSV imports and the management commands."""
from rest_framework import serializers

from kms.api.records import AttributesField, CategoryPathField, RecordSerializer, TextField
from kms.catalogue.models import Product

MAX_TITLE = 2_000
MAX_DESCRIPTION = 100_000
MAX_EXTERNAL_ID = Product._meta.get_field("external_id").max_length  # 128


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["external_id", "title", "description", "brand", "category_path", "attributes",
                  "content_hash", "created_at", "updated_at"]
        read_only_fields = ["content_hash", "created_at", "updated_at"]


class ProductWrite(RecordSerializer):
    """A product record. Strings are stripped, absent or null text is empty; also taken: ``id`` for
    ``external_id`` (an integer as its digits), ``categories`` for ``category_path``."""

    default_error_messages = {"invalid": "each product must be a JSON object",
                              "null": "each product must be a JSON object"}

    external_id = TextField(required=True, max_length=MAX_EXTERNAL_ID, aliases=("id",), ints=True)
    title = TextField(required=True, max_length=MAX_TITLE)
    description = TextField(required=False, max_length=MAX_DESCRIPTION)
    brand = TextField(required=False, max_length=255)
    category_path = CategoryPathField(required=False, aliases=("categories",),
                                      help_text="category names from the root; or one comma-separated string; "
                                                "the first 20 are kept")
    attributes = AttributesField(required=False, max_bytes=20_000, help_text="at most 20,000 bytes as JSON")


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
