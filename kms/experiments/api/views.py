"""REST endpoints of experiments: thin callers of ``kms.experiments.services`` and ``results``."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from kms.api.base import ApiView, valid_body
from kms.api.errors import NotFound, error_response
from kms.api.serializers import ErrorResponse
from kms.experiments import services
from kms.experiments.models import Experiment
from kms.experiments.results import experiment_results

from .serializers import ActionWrite, ExperimentResults, ExperimentSerializer, ExperimentWrite


def _via(request) -> str:
    return f"API key {request.auth.name}" if getattr(request.auth, "name", None) else "API"


def _user(request):
    """The portal login behind a session request (an API key is named in ``via`` instead)."""
    from django.contrib.auth import get_user_model

    return request.user if isinstance(request.user, get_user_model()) else None


def _conflict(exc: services.ExperimentError):
    return error_response(str(exc), code="conflict", status_code=status.HTTP_409_CONFLICT)


def _experiment(experiment_id: int) -> Experiment:
    e = services.find_experiment(experiment_id)
    if e is None:
        raise NotFound("experiment_id", experiment_id)
    return e


class ExperimentList(ApiView):
    customer_data = True

    @extend_schema(responses=ExperimentSerializer(many=True))
    def get(self, request):
        """Experiments, newest first."""
        return Response(ExperimentSerializer([services.experiment_dict(e) for e in services.recent_experiments()],
                                            many=True).data)

    @extend_schema(request=ExperimentWrite, responses={201: ExperimentSerializer, 409: ErrorResponse})
    def post(self, request):
        """Start an experiment: control = the active version, ``variants`` = other trained versions."""
        data = valid_body(ExperimentWrite, request)
        reason = data.pop("reason", "")
        try:
            e = services.start_experiment(**data, user=_user(request), reason=reason, via=_via(request))
        except services.ExperimentError as exc:
            return _conflict(exc)
        return Response(ExperimentSerializer(services.experiment_dict(e)).data, status=status.HTTP_201_CREATED)


class ExperimentDetail(ApiView):
    customer_data = True

    @extend_schema(responses=ExperimentSerializer)
    def get(self, request, experiment_id: int):
        return Response(ExperimentSerializer(services.experiment_dict(_experiment(experiment_id))).data)


class ExperimentResultsView(ApiView):
    customer_data = True

    @extend_schema(responses=ExperimentResults)
    def get(self, request, experiment_id: int):
        """Per-arm metrics with 95% intervals, the always-valid test of the primary metric, over time."""
        return Response(ExperimentResults(experiment_results(_experiment(experiment_id))).data)


class ExperimentAction(ApiView):
    action = ""

    @extend_schema(request=ActionWrite, responses={200: ExperimentSerializer, 409: ErrorResponse})
    def post(self, request, experiment_id: int):
        _experiment(experiment_id)
        data = valid_body(ActionWrite, request) if request.data else {}
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
        return Response(ExperimentSerializer(services.experiment_dict(e)).data)


class StopExperiment(ExperimentAction):
    action = "stop"


class PromoteExperiment(ExperimentAction):
    action = "promote"


class RollbackExperiment(ExperimentAction):
    action = "rollback"
