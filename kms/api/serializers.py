"""Request validation and response shapes (also the OpenAPI schema)."""
from rest_framework import serializers

from kms.catalogue.models import Product
from kms.events.models import ShopUser
from kms.events.services import EVENT_ID_MAX, ID_MAX

MAX_K = 200


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


class ShopUserSerializer(serializers.ModelSerializer):
    # Not read_only: a read-only field is "required" in the response schema, and only the detail
    # view counts events. The serializer is used for responses only.
    events = serializers.IntegerField(required=False, help_text="number of recorded events (detail view only)")

    class Meta:
        model = ShopUser
        fields = ["external_id", "created_at", "events"]
        read_only_fields = ["created_at"]


class ShopUserWrite(serializers.Serializer):
    external_id = serializers.CharField(max_length=128)

    def validate_external_id(self, value: str) -> str:
        value = value.strip()
        if not value or "\x00" in value:
            raise serializers.ValidationError("must be a non-empty id without NUL bytes")
        return value


class EventWrite(serializers.Serializer):
    """Documentation of an event body; validation is ``kms.events.services.clean_event``."""

    user = serializers.CharField(max_length=ID_MAX)
    product = serializers.CharField(max_length=ID_MAX)
    type = serializers.ChoiceField(choices=["view", "click", "cart", "purchase", "rating"], default="view")
    value = serializers.FloatField(required=False)
    timestamp = serializers.DateTimeField(required=False)
    event_id = serializers.CharField(max_length=EVENT_ID_MAX, required=False)
    recommendation_id = serializers.CharField(
        max_length=EVENT_ID_MAX, required=False,
        help_text="the recommendation_id of the list the product was clicked in (clicks, carts and purchases "
                  "are credited to that list, its model version and the item's position; without it: the "
                  "user's latest list showing the product within KMS_ATTRIBUTION_WINDOW_HOURS)")


class EventErrors(serializers.Serializer):
    index = serializers.IntegerField()
    errors = serializers.DictField(child=serializers.CharField())


class EventsResponse(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    errors = EventErrors(many=True)


class DeletedResponse(serializers.Serializer):
    deleted = serializers.IntegerField()


class RecommendationQuery(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, default=20)
    category = serializers.CharField(required=False, max_length=200, allow_blank=True)
    exclude_seen = serializers.BooleanField(default=True)
    explain = serializers.BooleanField(default=False)


class SimilarQuery(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, default=20)


class SimilarForUserQuery(SimilarQuery):
    user = serializers.CharField(required=False, max_length=128, allow_blank=True,
                                 help_text="who is looking (optional): experiments assign the model version by it, "
                                           "and the list is attributed to this user's events")


class PopularQuery(SimilarQuery):
    category = serializers.CharField(required=False, max_length=200, allow_blank=True)


class RecommendedItem(serializers.Serializer):
    product = serializers.CharField()
    title = serializers.CharField()
    brand = serializers.CharField()
    score = serializers.FloatField()
    position = serializers.IntegerField(required=False, help_text="1-based rank in this list")
    explanation = serializers.JSONField(required=False)


class ExperimentArmRef(serializers.Serializer):
    id = serializers.IntegerField()
    arm = serializers.CharField()


class RecommendationResponse(serializers.Serializer):
    user = serializers.CharField()
    source = serializers.CharField(help_text="model, cold-start (unknown user) or popular (no model yet)")
    model_version = serializers.IntegerField(allow_null=True)
    recommendation_id = serializers.CharField(help_text="this list's id: send it with the events it leads to")
    experiment = ExperimentArmRef(required=False, help_text="the experiment and arm that chose the version, if any")
    items = RecommendedItem(many=True)
    explanations = serializers.CharField(required=False, help_text="why explanations are missing, if asked for")


class SimilarResponse(serializers.Serializer):
    product = serializers.CharField()
    model_version = serializers.IntegerField(allow_null=True)
    source = serializers.CharField(help_text="model (item embedding) or content (cold start: text + graph)")
    recommendation_id = serializers.CharField(help_text="this list's id: send it with the events it leads to")
    experiment = ExperimentArmRef(required=False, help_text="the experiment and arm that chose the version, if any")
    items = RecommendedItem(many=True)


class PopularResponse(serializers.Serializer):
    items = RecommendedItem(many=True)


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


class EntitySerializer(serializers.Serializer):
    uid = serializers.CharField()
    type = serializers.CharField()
    name = serializers.CharField()
    aliases = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField()
    merged_into = serializers.CharField(allow_null=True)


class EntityQuery(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    type = serializers.CharField(required=False, max_length=32)


class NodeResponse(serializers.Serializer):
    uid = serializers.CharField()
    properties = serializers.DictField()


class NeighboursQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=500, default=50)
    rel = serializers.CharField(required=False, max_length=400,
                                help_text="comma-separated relationship types, e.g. HAS_BRAND,IN_CATEGORY")


class Neighbour(serializers.Serializer):
    uid = serializers.CharField()
    label = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    rel = serializers.CharField()
    direction = serializers.ChoiceField(choices=["in", "out"])
    props = serializers.DictField()


class NeighboursResponse(serializers.Serializer):
    uid = serializers.CharField()
    neighbours = Neighbour(many=True)


class PathQuery(serializers.Serializer):
    src = serializers.CharField(max_length=300)
    dst = serializers.CharField(max_length=300)
    max_hops = serializers.IntegerField(min_value=1, max_value=3, default=3)
    limit = serializers.IntegerField(min_value=1, max_value=20, default=5)


class PathNode(serializers.Serializer):
    uid = serializers.CharField()
    label = serializers.CharField()
    name = serializers.CharField(allow_null=True)


class GraphPath(serializers.Serializer):
    nodes = PathNode(many=True)
    rels = serializers.ListField(child=serializers.CharField())
    hops = serializers.IntegerField()


class PathsResponse(serializers.Serializer):
    src = serializers.CharField()
    dst = serializers.CharField()
    paths = GraphPath(many=True)


class IngestRequest(serializers.Serializer):
    products = serializers.ListField(child=serializers.CharField(max_length=128), required=False,
                                     max_length=100_000, help_text="product ids; omitted: the whole catalogue")
    force = serializers.BooleanField(default=False, help_text="re-extract even unchanged products")


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
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class TrainRequest(serializers.Serializer):
    params = serializers.DictField(required=False, default=dict,
                                   help_text='"preset" (best, the default, or fast) and TrainConfig fields overriding it')

    def validate_params(self, params: dict) -> dict:
        if len(params) > 50:
            raise serializers.ValidationError("at most 50 parameters")
        bad = [k for k, v in params.items() if not isinstance(v, (int, float, str, bool, type(None)))]
        if bad:
            raise serializers.ValidationError(f"parameters must be scalars: {', '.join(map(str, bad[:5]))}")
        try:
            import dataclasses

            from recommender.training import TrainConfig
        except ImportError:
            return params
        from recommender.presets import PRESET_KEY, PRESETS

        if PRESET_KEY in params and params[PRESET_KEY] not in PRESETS:
            raise serializers.ValidationError(f"unknown preset {params[PRESET_KEY]!r} (known: {', '.join(PRESETS)})")
        known = {f.name for f in dataclasses.fields(TrainConfig)} | {PRESET_KEY}
        unknown = sorted(set(params) - known)
        if unknown:
            raise serializers.ValidationError(f"unknown TrainConfig fields: {', '.join(unknown[:10])}")
        too_big = [k for k, limit in TRAIN_LIMITS.items()
                   if isinstance(params.get(k), (int, float)) and not 0 <= params[k] <= limit]
        if too_big:
            raise serializers.ValidationError(
                "out of range: " + ", ".join(f"{k} (0..{TRAIN_LIMITS[k]})" for k in too_big))
        return params


# A write key must not be able to tie up the training worker for days.
TRAIN_LIMITS = {"epochs": 1000, "seq_epochs": 1000, "dim": 512, "layers": 6, "patience": 50,
                "seq_len": 200, "seq_layers": 6, "seq_heads": 16, "cf_neighbours": 1000,
                "usercf_neighbours": 1000, "batch_size": 65536, "seq_batch_size": 8192, "eval_every": 100}


class TrainQueued(serializers.Serializer):
    task_id = serializers.CharField()
    version = serializers.IntegerField(help_text="the queued model version (GET /jobs/train/{version})")
    state = serializers.CharField()
    result = serializers.DictField(required=False, help_text="present when the task ran in-process")


class ModelVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    params = serializers.DictField()
    metrics = serializers.DictField()
    history = serializers.ListField(child=serializers.DictField())
    n_users = serializers.IntegerField()
    n_items = serializers.IntegerField()
    n_interactions = serializers.IntegerField()
    train_seconds = serializers.FloatField()
    message = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField(help_text="machine-readable: invalid, not_found, not_authenticated, ...")
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   help_text="field path (k, body, products.3.title) -> messages")


class ErrorResponse(serializers.Serializer):
    error = ErrorDetail()


class PingResponse(serializers.Serializer):
    status = serializers.CharField()
