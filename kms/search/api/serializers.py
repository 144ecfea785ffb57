"""Search request and response shapes (also the OpenAPI schema)."""
from rest_framework import serializers


class SearchQuery(serializers.Serializer):
    q = serializers.CharField(max_length=500, trim_whitespace=True)
    user = serializers.CharField(required=False, max_length=128, allow_blank=True)
    k = serializers.IntegerField(min_value=1, max_value=100, default=20)


class QueryEntitySerializer(serializers.Serializer):
    label = serializers.ChoiceField(choices=["BRAND", "PRODUCT_TYPE", "MATERIAL", "COLOR", "MEASURE", "MODEL_NUMBER"])
    text = serializers.CharField()
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    key = serializers.CharField()
    uid = serializers.CharField(help_text="graph node uid")
    source = serializers.CharField(help_text="nlp-pipeline or rules")
    value = serializers.FloatField(allow_null=True)
    unit = serializers.CharField(allow_null=True)
    expansion = serializers.DictField(help_text="aliases, categories/subcategories, compatible products")


class UnderstoodSerializer(serializers.Serializer):
    entities = QueryEntitySerializer(many=True)
    terms = serializers.ListField(child=serializers.CharField())
    recognisers = serializers.ListField(child=serializers.CharField())
    corrections = serializers.DictField(child=serializers.CharField(),
                                        help_text="a query word the catalogue never uses -> the catalogue word read instead")
    no_good_match = serializers.BooleanField(help_text="nothing known is named and no product has two of the query's "
                                                       "words: no items")


class SearchUserSerializer(serializers.Serializer):
    id = serializers.CharField()
    history = serializers.IntegerField()
    personalised = serializers.BooleanField()
    signals = serializers.ListField(child=serializers.CharField())


class SearchItem(serializers.Serializer):
    product = serializers.CharField()
    title = serializers.CharField()
    brand = serializers.CharField()
    score = serializers.FloatField()
    relevance = serializers.FloatField()
    personal = serializers.FloatField()
    matched = serializers.ListField(child=serializers.CharField())
    position = serializers.IntegerField(required=False, help_text="1-based rank in this list")


class SearchIndexInfo(serializers.Serializer):
    products = serializers.IntegerField()
    graph = serializers.CharField()
    build_seconds = serializers.FloatField()


class SearchResponse(serializers.Serializer):
    query = serializers.CharField()
    understood = UnderstoodSerializer()
    user = SearchUserSerializer(allow_null=True)
    index = SearchIndexInfo()
    total_candidates = serializers.IntegerField()
    recommendation_id = serializers.CharField(help_text="this list's id: send it with the events it leads to")
    items = SearchItem(many=True)
