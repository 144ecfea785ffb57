"""User and event request and response shapes (also the OpenAPI schema)."""
from rest_framework import serializers

from kms.events.models import ShopUser
from kms.events.services import EVENT_ID_MAX, ID_MAX


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
