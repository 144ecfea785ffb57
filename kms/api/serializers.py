"""Shapes every endpoint shares (also the OpenAPI schema): the error answer and the ping. The
resources' serializers live with the app that owns the resource (``kms/<app>/api/serializers.py``)."""
from rest_framework import serializers


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField(help_text="machine-readable: invalid, not_found, not_authenticated, ...")
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   help_text="field path (k, body, products.3.title) -> messages")


class ErrorResponse(serializers.Serializer):
    error = ErrorDetail()


class PingResponse(serializers.Serializer):
    status = serializers.CharField()
