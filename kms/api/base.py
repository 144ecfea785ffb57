"""What every REST view shares: the base view (input checks, parsers, the error-documenting schema),
cursor pagination and the request helpers (a bulk body, validated query parameters, a JSON object
body). Each app's ``api/views.py`` builds its endpoints on these."""
from __future__ import annotations

from urllib.parse import unquote_to_bytes

from rest_framework import exceptions, generics
from rest_framework.pagination import CursorPagination
from rest_framework.views import APIView

from .parsers import JSONLinesParser, JSONParser, NDJSONParser
from .schema import ApiSchema

MAX_BULK = 5000
PARSERS = [JSONParser, NDJSONParser, JSONLinesParser]


def bulk_records(request, what: str) -> list:
    """A bulk body: one JSON object, an array, or JSON Lines; 1..MAX_BULK records."""
    data = request.data
    if not data:
        raise exceptions.ValidationError({"body": [f"empty body: give a {what} object, an array or JSON Lines"]})
    records = data if isinstance(data, list) else [data]
    if len(records) > MAX_BULK:
        raise exceptions.ValidationError({"body": [f"at most {MAX_BULK} {what}s per request"]})
    return records


_VALID_QUERIES: dict[tuple, dict] = {}  # (serializer, query string) -> validated data
_VALID_QUERIES_MAX = 4096


def valid_query(serializer_class, request) -> dict:
    """The validated query parameters. Validation is a pure function of the query string, and the
    hot path's strings repeat (``k=20``), so valid results are kept: a DRF serializer costs more
    than the rest of a cached recommendation request. Invalid strings are validated every time."""
    key = (serializer_class, request.META.get("QUERY_STRING", ""))
    hit = _VALID_QUERIES.get(key)
    if hit is not None:
        return dict(hit)
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    if len(_VALID_QUERIES) >= _VALID_QUERIES_MAX:
        _VALID_QUERIES.clear()
    _VALID_QUERIES[key] = dict(query.validated_data)
    return dict(query.validated_data)


def valid_body(serializer_class, request) -> dict:
    """A JSON object body validated by ``serializer_class``."""
    if not isinstance(request.data, dict):
        raise exceptions.ValidationError({"body": ["must be a JSON object"]})
    body = serializer_class(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data


def bulk_error_fields(errors: list[dict]) -> dict[str, list[str]]:
    """Per-record errors of a bulk write (``{"index", "errors"}``) as error fields ``"<index>.<field>"``."""
    return {f"{e['index']}.{k}": [v] for e in errors[:50] for k, v in e["errors"].items()}


class Cursor(CursorPagination):
    page_size = 50
    ordering = "id"
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError({"cursor": ["invalid cursor"]})

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isdigit() and 0 < int(raw) <= self.max_page_size):
            raise exceptions.ValidationError({"page_size": [f"must be an integer from 1 to {self.max_page_size}"]})
        return super().get_page_size(request)


class CheckedInput:
    """Input the database cannot hold is a 400, not a 500: NUL in a path parameter (PostgreSQL text
    refuses it) and a query string that is not UTF-8 once percent-decoded."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication and permissions first
        for name, value in kwargs.items():
            if isinstance(value, str) and "\x00" in value:
                raise exceptions.ValidationError({name: ["must not contain NUL characters"]})
        query = request.META.get("QUERY_STRING", "")
        if "%" in query or not query.isascii():
            try:
                raw = unquote_to_bytes(query.encode("latin-1"))  # WSGI strings carry bytes as latin-1
            except UnicodeEncodeError:
                return
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise exceptions.ValidationError({"query": ["the query string is not valid UTF-8"]})


class ApiView(CheckedInput, APIView):
    parser_classes = PARSERS
    schema = ApiSchema()


class ApiListView(CheckedInput, generics.ListAPIView):
    """A cursor-paginated list (GET) with the API's parsers and schema; subclasses add a POST."""

    pagination_class = Cursor
    parser_classes = PARSERS
    schema = ApiSchema()
