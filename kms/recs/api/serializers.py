"""Recommendation, similar, popular and training-job request and response shapes (also the OpenAPI schema)."""
from rest_framework import serializers

MAX_K = 200


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
