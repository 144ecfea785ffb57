"""User and event endpoints: thin callers of ``kms.events.services`` (and ``forget_user`` of recs)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from kms.api.base import ApiListView, ApiView, bulk_error_fields, bulk_records, valid_body
from kms.api.errors import NotFound, error_response
from kms.api.serializers import ErrorResponse
from kms.curation.tasks import deliver_outbox_after_commit
from kms.events import services
from kms.events.models import ShopUser
from kms.events.tasks import deliver_to_graph
from kms.recs.services import forget_user

from . import serializers as api


def _user(user_id: str) -> ShopUser:
    user = services.find_user(user_id)
    if user is None:
        raise NotFound("user_id", user_id)
    return user


def _user_exists():
    return error_response("user exists", {"external_id": ["a user with this id exists"]},
                          code="conflict", status_code=status.HTTP_409_CONFLICT)


class UserList(ApiListView):
    """Shop users (cursor-paginated); POST registers one (they are also created by their first event)."""

    serializer_class = api.ShopUserSerializer
    queryset = ShopUser.objects.all()
    customer_data = True  # reading needs a key unless KMS_PUBLIC_CUSTOMER_READ (kms.api.auth)

    @extend_schema(request=api.ShopUserWrite, responses={201: api.ShopUserSerializer, 409: ErrorResponse})
    def post(self, request):
        data = valid_body(api.ShopUserWrite, request)
        user, created = services.create_user(data["external_id"])
        if not created:
            return _user_exists()
        return Response(api.ShopUserSerializer(user).data, status=status.HTTP_201_CREATED)


class UserDetail(ApiView):
    customer_data = True

    @extend_schema(responses=api.ShopUserSerializer)
    def get(self, request, user_id: str):
        user = _user(user_id)
        user.events = services.count_events(user)
        return Response(api.ShopUserSerializer(user).data)

    def _rename(self, request, user_id: str):
        user = _user(user_id)
        data = valid_body(api.ShopUserWrite, request)
        if data["external_id"] != user_id:
            if services.user_exists(data["external_id"]):
                return _user_exists()
            services.rename_user(user, data["external_id"])
            deliver_outbox_after_commit()
        return Response(api.ShopUserSerializer(user).data)

    @extend_schema(request=api.ShopUserWrite, responses={200: api.ShopUserSerializer, 409: ErrorResponse})
    def put(self, request, user_id: str):
        return self._rename(request, user_id)

    @extend_schema(request=api.ShopUserWrite, responses={200: api.ShopUserSerializer, 409: ErrorResponse})
    def patch(self, request, user_id: str):
        return self._rename(request, user_id)

    @extend_schema(responses={204: None})
    def delete(self, request, user_id: str):
        forget_user(_user(user_id).external_id)
        deliver_outbox_after_commit()
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserEvents(ApiView):
    customer_data = True

    @extend_schema(responses={200: api.DeletedResponse})
    def delete(self, request, user_id: str):
        """Erase the user's events from the database and the graph store (the user stays)."""
        _user(user_id)
        deleted = services.delete_user_events(user_id)
        deliver_outbox_after_commit()
        return Response(api.DeletedResponse({"deleted": deleted}).data)


class EventList(ApiView):
    @extend_schema(request=api.EventWrite(many=True), responses={202: api.EventsResponse})
    def post(self, request):
        """Record one event, a JSON array or JSON Lines; idempotent on ``event_id``."""
        records = bulk_records(request, "event")
        result = services.record_events(records)
        deliver_to_graph(result.interaction_ids)
        if not result.created and not result.duplicates and result.errors:
            return error_response("no valid event", bulk_error_fields(result.errors))
        return Response(api.EventsResponse(result.as_dict()).data, status=status.HTTP_202_ACCEPTED)
