"""Experiment request and response shapes (also the OpenAPI schema)."""
import math

from rest_framework import serializers

from kms.experiments.models import Experiment


POSITIVE = 1e-6  # shares and traffic must be > 0 (the service refuses 0): the schema says so as its minimum


class VariantWrite(serializers.Serializer):
    version = serializers.IntegerField(help_text="a trained model version (ready, active or rejected)")
    share = serializers.FloatField(default=1.0, min_value=POSITIVE, help_text="relative weight among the arms (> 0)")


class ExperimentWrite(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    variants = VariantWrite(many=True)
    control_share = serializers.FloatField(default=1.0, min_value=POSITIVE)
    traffic = serializers.FloatField(default=1.0, min_value=POSITIVE, max_value=1.0,
                                     help_text="share of users in the experiment (> 0); the rest get the active version")
    metric = serializers.ChoiceField(choices=Experiment.Metric.values, default="ctr")
    k = serializers.IntegerField(default=10, min_value=1, max_value=200)
    alpha = serializers.FloatField(default=0.05, min_value=0.0001, max_value=0.5)
    power = serializers.FloatField(default=0.8, min_value=0.5, max_value=0.999)
    baseline = serializers.FloatField(default=0.05, help_text="expected control value of the metric (power calculation)")
    relative_mde = serializers.FloatField(default=0.1, help_text="smallest relative lift worth detecting")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ActionWrite(serializers.Serializer):
    arm = serializers.CharField(required=False, max_length=32, help_text="promote: the arm whose version goes live")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ArmSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    share = serializers.FloatField()


class ExperimentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=Experiment.State.values)
    traffic = serializers.FloatField()
    metric = serializers.CharField()
    k = serializers.IntegerField()
    alpha = serializers.FloatField()
    power = serializers.FloatField()
    baseline = serializers.FloatField()
    relative_mde = serializers.FloatField()
    users_per_arm = serializers.IntegerField(help_text="planned sample size from the power calculation")
    tau = serializers.FloatField(help_text="mSPRT mixing sd, fixed at the start")
    started_at = serializers.DateTimeField()
    stopped_at = serializers.DateTimeField(allow_null=True)
    promoted_arm = serializers.CharField()
    arms = ArmSerializer(many=True)


def finite(value):
    """``value`` with every infinite or NaN float as None: JSON has no infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


class ExperimentResults(serializers.Serializer):
    """Intervals and estimates that no data bound yet (an arm with fewer than two users) are null
    (they are infinite: JSON cannot carry that)."""

    experiment = serializers.IntegerField()
    name = serializers.CharField()
    state = serializers.CharField()
    primary_metric = serializers.CharField()
    k = serializers.IntegerField()
    planned_users_per_arm = serializers.IntegerField()
    arms = serializers.DictField(help_text="per arm: version, users, impressions, metrics {value, ci95, total}")
    comparisons = serializers.DictField(help_text="per variant against control: per metric difference, ci95, "
                                                  "lift, z_p_value; the primary's always_valid_p; significant, better")
    winner = serializers.CharField(allow_null=True)
    over_time = serializers.DictField(help_text="per arm: [{bucket, impressions, <primary metric>}]")
    bucket = serializers.CharField()
    test = serializers.CharField()

    def to_representation(self, instance):
        return finite(super().to_representation(instance))
