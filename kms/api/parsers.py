"""Request body parsers that turn every malformed body into a 400 naming ``body``, never a 500:
invalid UTF-8/JSON; lone surrogates (``"\\ud800"``) and NUL characters (``"\\u0000"``), valid JSON
that PostgreSQL cannot store as text or jsonb; nesting deeper than MAX_DEPTH; bodies larger than
MAX_BODY_BYTES (413). Also JSON Lines (``application/x-ndjson``) for bulk uploads."""
from __future__ import annotations

import json
import re

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


def check_depth(value, limit: int = MAX_DEPTH, where: str = "") -> None:
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
            raise BodyError(f"{where}JSON nested deeper than {limit} levels")
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))


_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")


def check_text(value, where: str = "") -> None:
    """Every string and key must be storable text: UTF-8 encodable (no lone surrogate), no NUL."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise BodyError(f"{where}body contains a NUL character (\\u0000), which cannot be stored")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BodyError(f"{where}body contains a lone surrogate escape (e.g. \\ud800), which is not text")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def loads(text: bytes, where: str = "") -> object:
    try:
        value = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise BodyError(f"{where}body is not valid UTF-8")
    except RecursionError:
        raise BodyError(f"{where}JSON nested deeper than {MAX_DEPTH} levels")
    except ValueError as exc:
        raise BodyError(f"{where}invalid JSON: {exc}")
    check_depth(value, where=where)
    if _UNSTORABLE_ESCAPE.search(text):  # only an escape can put these into a string
        check_text(value, where=where)
    return value


class JSONParser(parsers.BaseParser):
    """Not a subclass of DRF's JSONParser: DRF reads those through ``request.body``, which raises
    RequestDataTooBig above DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) before this parser's own limit."""

    media_type = "application/json"

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
