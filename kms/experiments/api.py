"""REST endpoints of experiments: thin callers of ``kms.experiments.services`` and ``results``."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from kms.api.errors import NotFound, error_response
from kms.api.views import ApiView, _body

from . import services
from .models import Experiment
from .results import experiment_results


class VariantWrite(serializers.Serializer):
    version = serializers.IntegerField(help_text="a trained model version (ready, active or rejected)")
    share = serializers.FloatField(default=1.0, min_value=0.0, help_text="relative weight among the arms")


class ExperimentWrite(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    variants = VariantWrite(many=True)
    control_share = serializers.FloatField(default=1.0, min_value=0.0)
    traffic = serializers.FloatField(default=1.0, min_value=0.0, max_value=1.0,
                                     help_text="share of users in the experiment; the rest get the active version")
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


class ExperimentResults(serializers.Serializer):
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


def _via(request) -> str:
    return f"API key {request.auth.name}" if getattr(request.auth, "name", None) else "API"


def _user(request):
    """The portal login behind a session request (an API key is named in ``via`` instead)."""
    from django.contrib.auth import get_user_model

    return request.user if isinstance(request.user, get_user_model()) else None


def _conflict(exc: services.ExperimentError):
    return error_response(str(exc), code="conflict", status_code=status.HTTP_409_CONFLICT)


def _experiment(experiment_id: int) -> Experiment:
    e = Experiment.objects.filter(pk=experiment_id).prefetch_related("arms").first()
    if e is None:
        raise NotFound("experiment_id", experiment_id)
    return e


class ExperimentList(ApiView):
    customer_data = True

    @extend_schema(responses=ExperimentSerializer(many=True))
    def get(self, request):
        """Experiments, newest first."""
        return Response([services.experiment_dict(e) for e in Experiment.objects.prefetch_related("arms")[:100]])

    @extend_schema(request=ExperimentWrite, responses={201: ExperimentSerializer, 409: ExperimentSerializer})
    def post(self, request):
        """Start an experiment: control = the active version, ``variants`` = other trained versions."""
        data = _body(ExperimentWrite, request)
        reason = data.pop("reason", "")
        try:
            e = services.start_experiment(**data, user=_user(request), reason=reason, via=_via(request))
        except services.ExperimentError as exc:
            return _conflict(exc)
        return Response(services.experiment_dict(e), status=status.HTTP_201_CREATED)


class ExperimentDetail(ApiView):
    customer_data = True

    @extend_schema(responses=ExperimentSerializer)
    def get(self, request, experiment_id: int):
        return Response(services.experiment_dict(_experiment(experiment_id)))


class ExperimentResultsView(ApiView):
    customer_data = True

    @extend_schema(responses=ExperimentResults)
    def get(self, request, experiment_id: int):
        """Per-arm metrics with 95% intervals, the always-valid test of the primary metric, over time."""
        return Response(experiment_results(_experiment(experiment_id)))


class ExperimentAction(ApiView):
    action = ""

    @extend_schema(request=ActionWrite, responses={200: ExperimentSerializer, 409: ExperimentSerializer})
    def post(self, request, experiment_id: int):
        _experiment(experiment_id)
        data = _body(ActionWrite, request) if request.data else {}
        kwargs = {"user": _user(request), "reason": data.get("reason", ""), "via": _via(request)}
        try:
            if self.action == "stop":
                e = services.stop_experiment(experiment_id, **kwargs)
            elif self.action == "promote":
                if not data.get("arm"):
                    return error_response("name the arm to promote", {"arm": ["required"]})
                e = services.promote(experiment_id, data["arm"], **kwargs)
            else:
                e = services.rollback(experiment_id, **kwargs)
        except services.ExperimentError as exc:
            return _conflict(exc)
        return Response(services.experiment_dict(e))


class StopExperiment(ExperimentAction):
    action = "stop"


class PromoteExperiment(ExperimentAction):
    action = "promote"


class RollbackExperiment(ExperimentAction):
    action = "rollback"
