"""Request body parsers that turn every malformed body into a 400 naming ``body``, never a 500:
invalid UTF-8/JSON, nesting deeper than MAX_DEPTH, bodies larger than MAX_BODY_BYTES, and
JSON Lines (``application/x-ndjson``) for bulk uploads."""
from __future__ import annotations

import json

from rest_framework import exceptions, parsers

MAX_DEPTH = 32
MAX_BODY_BYTES = 32 * 1024 * 1024


class BodyError(exceptions.ParseError):
    def __init__(self, message: str):
        super().__init__({"body": [message]})


class BodyTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "body_too_large"
    default_detail = f"request body is larger than {MAX_BODY_BYTES} bytes"


def _read(stream) -> bytes:
    data = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
    if len(data) > MAX_BODY_BYTES:
        raise BodyTooLarge({"body": [BodyTooLarge.default_detail]})
    return data


def check_depth(value, limit: int = MAX_DEPTH) -> None:
    """Iterative, so a hostile document cannot exhaust the stack here either."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise BodyError(f"JSON nested deeper than {limit} levels")
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))


def loads(text: bytes, where: str = "") -> object:
    try:
        value = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise BodyError(f"{where}body is not valid UTF-8")
    except RecursionError:
        raise BodyError(f"{where}JSON nested deeper than {MAX_DEPTH} levels")
    except ValueError as exc:
        raise BodyError(f"{where}invalid JSON: {exc}")
    check_depth(value)
    return value


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = _read(stream)
        if not data.strip():
            raise BodyError("empty body: a JSON document is required")
        return loads(data)


class NDJSONParser(parsers.BaseParser):
    """One JSON object per line; the result is a list, as if a JSON array had been posted."""

    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None):
        out = []
        for n, line in enumerate(_read(stream).splitlines(), 1):
            if line.strip():
                out.append(loads(line, where=f"line {n}: "))
        return out


class JSONLinesParser(NDJSONParser):
    media_type = "application/jsonl"
