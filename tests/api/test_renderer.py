"""The API's orjson renderer writes what DRF's JSONRenderer writes, and the API uses it."""
import datetime
import decimal
import json
import uuid

import numpy as np
import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from kms.api.renderers import FastJSONRenderer

SAMPLES = [
    {"items": [{"product": "B01", "title": "Hex nut 1/4\"-20, ünïcode — 3 mm", "brand": None, "score": 0.123456,
                "position": 1}], "recommendation_id": "ab" * 16, "model_version": 3, "ok": True},
    {"at": datetime.datetime(2026, 12, 3, 7, 0, 1, 123456, tzinfo=datetime.timezone.utc),
     "naive": datetime.datetime(2026, 12, 3, 7, 0), "day": datetime.date(2026, 12, 3),
     "time": datetime.time(7, 30, 1, 500000), "span": datetime.timedelta(hours=2)},
    {"price": decimal.Decimal("12.50"), "id": uuid.UUID(int=7), "lazy": gettext_lazy("not found"),
     "n": np.int64(4), "x": np.float32(0.5), "v": np.arange(3), "nested": [[1, 2], {"a": [None]}]},
    {"separators": "line\u2028paragraph\u2029end", "big": 1.5e300, "neg": -0.0},
    [1, "two", 3.0],
]


@pytest.mark.parametrize("data", SAMPLES)
def test_same_bytes_as_drf(data):
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)


def test_pretty_printing_request_and_out_of_range_integers_use_drf():
    data = {"a": [1, 2], "huge": 2 ** 70}
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)
    pretty = FastJSONRenderer().render({"a": 1}, "application/json; indent=2")
    assert pretty == JSONRenderer().render({"a": 1}, "application/json; indent=2") and b"\n" in pretty


def test_nan_is_null_not_a_failure():
    assert json.loads(FastJSONRenderer().render({"x": float("nan")})) == {"x": None}


def test_the_api_renders_with_it(client):
    from rest_framework.settings import api_settings

    assert api_settings.DEFAULT_RENDERER_CLASSES[0] is FastJSONRenderer
    response = client.get("/api/v1/ping")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.content == b'{"status":"ok"}'
