"""Recommendation, similar, popular and training-job endpoints: the read paths are
``kms.api.serving``'s, the registry and training ``kms.recs.services``' and ``kms.recs.tasks``'.
Job answers are rendered through their serializers; the read paths' dicts are not (latency: see
``kms.api.serving``), their real answers are checked against the schema in the tests."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from kms.api import serving
from kms.api.base import ApiView, valid_body, valid_query
from kms.api.errors import NotFound, error_response
from kms.api.serializers import ErrorResponse
from kms.recs import services

from . import serializers as api


class UserRecommendations(ApiView):
    customer_data = True

    @extend_schema(parameters=[api.RecommendationQuery], responses=api.RecommendationResponse)
    def get(self, request, user_id: str):
        """Top-k for a user; an unknown user gets cold-start results, not an error."""
        q = valid_query(api.RecommendationQuery, request)
        return Response(serving.recommend(user_id, q["k"], q.get("category") or None, q["exclude_seen"],
                                          q["explain"]))


class SimilarProducts(ApiView):
    @extend_schema(parameters=[api.SimilarForUserQuery], responses=api.SimilarResponse)
    def get(self, request, product_id: str):
        q = valid_query(api.SimilarForUserQuery, request)
        try:
            return Response(serving.similar(product_id, q["k"], q.get("user") or None))
        except serving.UnknownProduct:
            raise NotFound("product_id", product_id)


class Popular(ApiView):
    @extend_schema(parameters=[api.PopularQuery], responses=api.PopularResponse)
    def get(self, request):
        q = valid_query(api.PopularQuery, request)
        return Response({"items": serving.popular(q["k"], q.get("category") or None)})


class TrainingJobs(ApiView):
    @extend_schema(responses=api.ModelVersionSerializer(many=True))
    def get(self, request):
        """Model versions, newest first (a running training job is a version in state ``training``)."""
        return Response(api.ModelVersionSerializer([services.version_dict(v) for v in services.recent_versions()],
                                                   many=True).data)

    @extend_schema(request=api.TrainRequest, responses={202: api.TrainQueued, 409: ErrorResponse})
    def post(self, request):
        """Queue a training run: a model version in state ``queued`` (``GET /jobs/train/{version}``
        follows it), trained by the ``kms.recs.tasks.train`` task."""
        from kms.recs.tasks import queue_training

        data = valid_body(api.TrainRequest, request) if request.data else {"params": {}}
        try:
            version, task_id, result = queue_training(data["params"] or None)
        except Exception as exc:  # eager mode (no broker) runs it here; a failure is the job's, not the request's
            return error_response(f"training failed: {type(exc).__name__}: {exc}"[:500], code="training_failed",
                                  status_code=status.HTTP_409_CONFLICT)
        body = {"task_id": task_id, "version": version.pk, "state": result.state.lower() if result else "pending"}
        if result is not None and result.ready():
            body["result"] = result.result
        return Response(api.TrainQueued(body).data, status=status.HTTP_202_ACCEPTED)


class TrainingJobDetail(ApiView):
    @extend_schema(responses=api.ModelVersionSerializer)
    def get(self, request, version_id: int):
        version = services.find_version(version_id)
        if version is None:
            raise NotFound("version_id", version_id)
        return Response(api.ModelVersionSerializer(services.version_dict(version)).data)
