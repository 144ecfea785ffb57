"""User and event request and response shapes (also the OpenAPI schema). ``EventWrite`` holds the
rules of an event record for every way in: ``POST /events`` and the imports, through
``kms.events.services.clean_event``."""
import hashlib

from rest_framework import serializers

from kms.api.records import ChoiceTextField, FiniteNumberField, IdField, RecordSerializer, TimestampField
from kms.events.models import Interaction, ShopUser

ID_MAX = ShopUser._meta.get_field("external_id").max_length  # 128: user and product ids
EVENT_ID_MAX = Interaction._meta.get_field("event_id").max_length  # 64: longer ids are refused, never cut


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


class EventWrite(RecordSerializer):
    """An event record; also taken: ``user_id`` for ``user``, ``item`` or ``product_id`` for
    ``product``, ids as integers. Without ``event_id`` the event's id is a hash of user, product,
    type and time, so re-sending the same event is a duplicate."""

    default_error_messages = {"invalid": "each event must be a JSON object", "null": "each event must be a JSON object"}

    user = IdField(max_length=ID_MAX, aliases=("user_id",), invalid=f"is required (string id, ≤{ID_MAX} characters)")
    product = IdField(max_length=ID_MAX, aliases=("item", "product_id"),
                      invalid=f"is required (string id, ≤{ID_MAX} characters)")
    type = ChoiceTextField(choices=Interaction.Type.values, default="view")
    timestamp = TimestampField(required=False, help_text="ISO 8601 (naive: UTC) or a Unix time in seconds; "
                                                         "omitted: now")
    value = FiniteNumberField(limit=1e6, default=1.0)
    event_id = IdField(max_length=EVENT_ID_MAX, required=False, invalid=f"must be a string id, ≤{EVENT_ID_MAX} characters",
                       help_text="idempotency key; omitted: a hash of user, product, type and timestamp")
    recommendation_id = IdField(
        max_length=EVENT_ID_MAX, required=False, invalid=f"must be a string id, ≤{EVENT_ID_MAX} characters",
        help_text="the recommendation_id of the list the product was clicked in (clicks, carts and purchases "
                  "are credited to that list, its model version and the item's position; without it: the "
                  "user's latest list showing the product within KMS_ATTRIBUTION_WINDOW_HOURS)")

    def validate(self, attrs: dict) -> dict:
        if attrs["event_id"] is None:
            key = f"{attrs['user']}|{attrs['product']}|{attrs['type']}|{attrs['timestamp'].isoformat()}"
            attrs["event_id"] = hashlib.sha1(key.encode()).hexdigest()
        return attrs


class EventErrors(serializers.Serializer):
    index = serializers.IntegerField()
    errors = serializers.DictField(child=serializers.CharField())


class EventsResponse(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    errors = EventErrors(many=True)


class DeletedResponse(serializers.Serializer):
    deleted = serializers.IntegerField()
