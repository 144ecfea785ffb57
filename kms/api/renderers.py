"""The API's JSON renderer: DRF's ``JSONRenderer`` output, encoded by orjson.

DRF's renderer runs ``json.dumps`` with its encoder class; for a k=20 recommendation list that is
about 45 µs of a cached request's few hundred, orjson about 3 µs (``bench/api_load.py`` measures
the request as a whole). The output keeps DRF's choices: compact separators, UTF-8 rather than
``\\u`` escapes, U+2028/U+2029 escaped, and every type orjson does not encode the way DRF's
encoder does (datetimes, dates, times, decimals, lazy strings, numpy values, querysets) handed to
DRF's encoder. A pretty-printing request (``Accept: application/json; indent=4``, the browsable
API) and anything orjson refuses (integers beyond 64 bits) go through DRF's own renderer. One
difference: a NaN or infinite float is written as ``null``, where DRF's strict renderer fails the
request with a 500."""
from __future__ import annotations

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_DRF_ENCODER = JSONEncoder()
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME  # DRF's format: milliseconds, "Z" for UTC
_LINE_SEPARATOR, _PARAGRAPH_SEPARATOR = "\u2028".encode(), "\u2029".encode()


def _default(obj):
    return _DRF_ENCODER.default(obj)


class FastJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None or not self.compact \
                or self.ensure_ascii:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            out = orjson.dumps(data, default=_default, option=_OPTIONS)
        except (orjson.JSONEncodeError, TypeError, ValueError):
            return super().render(data, accepted_media_type, renderer_context)
        if b"\xe2\x80" in out:
            out = out.replace(_LINE_SEPARATOR, b"\\u2028").replace(_PARAGRAPH_SEPARATOR, b"\\u2029")
        return out
