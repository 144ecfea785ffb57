"""The endpoints that belong to no resource: the ping and the JSON 404 for unknown paths. Each
resource's endpoints live with the app that owns it (``kms/<app>/api/views.py``)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from .base import ApiView
from .errors import error_response
from .serializers import PingResponse


class Ping(ApiView):
    """The cheapest DRF endpoint (auth, throttle, JSON rendering): the ceiling for the benchmark."""

    @extend_schema(responses=PingResponse)
    def get(self, request):
        return Response({"status": "ok"})


@extend_schema(exclude=True)
class UnknownEndpoint(ApiView):
    """Any other path under /api/v1/: the JSON 404 of the error shape, not Django's HTML page."""

    def _404(self, request, *args, **kwargs):
        return error_response(f"no endpoint {request.path}", {"path": [request.path]}, code="not_found",
                              status_code=status.HTTP_404_NOT_FOUND)

    get = post = put = patch = delete = _404

    def get_permissions(self):
        return []
