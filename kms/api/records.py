"""The fields of bulk-importable records (products, events) and their serializer base: one set of
rules for the REST bodies, JSONL/CSV imports and the management commands.

Each field takes what the importers always took (absent or null as its default, an int as an id,
a comma-separated category string, a Unix time) and answers with the importers' messages
(``"is required"``, ``"contains NUL bytes"``); drf-spectacular documents it by its DRF base class.
``RecordSerializer.clean(record)`` validates with one bound instance per class: constructing a DRF
serializer deep-copies its fields, which would cost more than the rules themselves on a bulk import.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone as dt_timezone
from functools import cached_property

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.settings import api_settings


def _given(field, dictionary):
    """The value under the field's name or, if absent, under its first alias present."""
    for key in field.keys:
        if key in dictionary:
            return dictionary[key]
    return empty


class Aliased:
    """A field read under its own name or, if absent, its first alias present (``aliases=``)."""

    def __init__(self, *args, aliases: tuple[str, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.aliases = aliases

    def bind(self, field_name, parent):
        super().bind(field_name, parent)
        self.keys = (field_name, *self.aliases)

    get_value = _given


class TextField(Aliased, serializers.CharField):
    """Absent or null is ``""``; NUL bytes are refused before stripping; ``ints`` takes an integer as
    its decimal string (ids)."""

    default_error_messages = {"type": "must be a string, got {type}", "nul": "contains NUL bytes",
                              "required": "is required", "max_length": "is longer than {max_length} characters"}

    def __init__(self, *, ints: bool = False, **kwargs):
        kwargs.setdefault("allow_blank", not kwargs.get("required", True))
        super().__init__(**kwargs)
        self.ints = ints

    def run_validation(self, data=empty):
        if data is empty or data is None:
            data = ""
        elif self.ints and isinstance(data, int) and not isinstance(data, bool):
            data = str(data)
        if not isinstance(data, str):
            self.fail("type", type=type(data).__name__)
        if "\x00" in data:
            self.fail("nul")
        data = data.strip()
        if not data and self.required:
            self.fail("required")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return data


class IdField(Aliased, serializers.CharField):
    """An id: a string (or an int) of 1..max_length characters once stripped, without NUL bytes;
    every way to miss that gets the one ``invalid`` message. Optional ids are None when absent."""

    def __init__(self, *, invalid: str, **kwargs):
        super().__init__(error_messages={"invalid": invalid}, **kwargs)

    def run_validation(self, data=empty):
        if data is empty or data is None:
            if self.required:
                self.fail("invalid")
            return None
        if isinstance(data, int) and not isinstance(data, bool):
            data = str(data)
        if isinstance(data, str) and "\x00" not in data:
            data = data.strip()
            if 0 < len(data) <= self.max_length:
                return data
        self.fail("invalid")


class CategoryPathField(Aliased, serializers.ListField):
    """A list of category names (each at most 255 characters), or one comma-separated string;
    absent is ``[]``; at most the first ``keep`` are kept."""

    default_error_messages = {"type": "must be a list of strings (or a comma-separated string)",
                              "nul": "contains NUL bytes"}

    def __init__(self, *, keep: int = 20, **kwargs):
        super().__init__(child=serializers.CharField(max_length=255), **kwargs)
        self.keep = keep

    def run_validation(self, data=empty):
        if data is empty:
            return []
        if isinstance(data, str):
            data = [c.strip() for c in data.split(",") if c.strip()]
        if not isinstance(data, list) or not all(isinstance(c, str) and len(c) <= 255 for c in data):
            self.fail("type")
        if any("\x00" in c for c in data):
            self.fail("nul")
        return data[:self.keep]


class AttributesField(serializers.DictField):
    """A JSON object of at most ``max_bytes`` once encoded; absent, null or empty is ``{}``."""

    default_error_messages = {"type": "must be an object", "size": "is larger than {max_bytes} bytes",
                              "nul": "contains NUL bytes"}

    def __init__(self, *, max_bytes: int = 20_000, **kwargs):
        super().__init__(**kwargs)
        self.max_bytes = max_bytes

    def run_validation(self, data=empty):
        if data is empty or not data:
            return {}
        if not isinstance(data, dict):
            self.fail("type")
        encoded = json.dumps(data, default=str)
        if len(encoded) > self.max_bytes:
            self.fail("size", max_bytes=self.max_bytes)
        if "\\u0000" in encoded:
            self.fail("nul")
        return data


class ChoiceTextField(serializers.ChoiceField):
    """One of ``choices`` (a string); absent is the default."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.error_messages["invalid_choice"] = f"must be one of {sorted(self.choices)}"

    def run_validation(self, data=empty):
        if data is empty:
            return self.default
        if not isinstance(data, str) or data not in self.choices:
            self.fail("invalid_choice")
        return data


class FiniteNumberField(serializers.FloatField):
    """A number (not a boolean) within ±``max_value``, as a float; absent is the default."""

    default_error_messages = {"invalid": "must be a finite number"}

    def __init__(self, *, limit: float, **kwargs):
        super().__init__(min_value=-limit, max_value=limit, **kwargs)
        self.limit = limit

    def run_validation(self, data=empty):
        if data is empty:
            return self.default
        if isinstance(data, bool) or not isinstance(data, (int, float)) or data != data or abs(data) > self.limit:
            self.fail("invalid")
        return float(data)


class TimestampField(serializers.DateTimeField):
    """An ISO 8601 datetime (naive: UTC) or a Unix time in seconds; absent or null: now."""

    default_error_messages = {"invalid": "must be an ISO 8601 datetime or a Unix time"}

    def run_validation(self, data=empty):
        if data is empty or data is None:
            return timezone.now()
        try:
            if isinstance(data, (int, float)) and not isinstance(data, bool):
                return datetime.fromtimestamp(float(data), tz=dt_timezone.utc)
            if isinstance(data, str):
                parsed = parse_datetime(data)
                if parsed is not None:
                    return timezone.make_aware(parsed, dt_timezone.utc) if timezone.is_naive(parsed) else parsed
        except (OverflowError, OSError, ValueError):
            pass
        self.fail("invalid")


def first_messages(detail) -> dict[str, str]:
    """A serializer's errors as the importers report them: ``{field: first message}``."""
    if not isinstance(detail, dict):
        detail = {api_settings.NON_FIELD_ERRORS_KEY: detail}
    return {key: str(value[0] if isinstance(value, list) else value) for key, value in detail.items()}


class RecordSerializer(serializers.Serializer):
    """A write serializer whose rules are also the importers': ``clean(record)`` ->
    ``(validated dict, {})`` or ``(None, {field: message})``. Subclasses set ``default_error_messages``
    ``invalid`` and ``null`` to what a record that is not an object gets."""

    _rules: RecordSerializer | None = None

    # Two of DRF's per-call costs that are fixed per instance, kept: the writable fields (DRF walks
    # its field mapping again for every record) and the serializer-level validators (none here).
    @cached_property
    def _writable_fields(self) -> tuple:
        return tuple(f for f in self.fields.values() if not f.read_only)

    def run_validators(self, value):
        if self.validators:
            super().run_validators(value)

    @classmethod
    def clean(cls, record) -> tuple[dict | None, dict[str, str]]:
        rules = cls.__dict__.get("_rules")
        if rules is None:
            rules = cls()
            rules.fields  # bind the fields once (a cached property)
            cls._rules = rules
        try:
            return rules.run_validation(record), {}
        except serializers.ValidationError as exc:
            return None, first_messages(exc.detail)
