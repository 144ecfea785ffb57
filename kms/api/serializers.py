from rest_framework import serializers

from kms.catalogue.models import Product


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["external_id", "title", "description", "brand", "category_path", "attributes",
                  "content_hash", "created_at", "updated_at"]
        read_only_fields = ["content_hash", "created_at", "updated_at"]


class RecommendationQuery(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=200, default=20)
    category = serializers.CharField(required=False, max_length=200, allow_blank=True)
    exclude_seen = serializers.BooleanField(default=True)
    explain = serializers.BooleanField(default=False)


class SimilarQuery(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=200, default=20)


class RecommendedItem(serializers.Serializer):
    product = serializers.CharField()
    title = serializers.CharField()
    brand = serializers.CharField()
    score = serializers.FloatField()
    explanation = serializers.DictField(required=False)


class RecommendationResponse(serializers.Serializer):
    user = serializers.CharField()
    source = serializers.CharField()
    model_version = serializers.IntegerField(allow_null=True)
    items = RecommendedItem(many=True)


class JobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    state = serializers.CharField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    skipped = serializers.IntegerField()
    failed = serializers.IntegerField()
    rate_per_s = serializers.FloatField()
    errors = serializers.ListField(child=serializers.DictField())
    message = serializers.CharField(allow_blank=True)
