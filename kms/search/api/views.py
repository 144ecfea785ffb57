"""The search endpoint: ``kms.search.search``, its list recorded by ``kms.api.serving``. The answer
is rendered as built, not through ``SearchResponse`` (0.5 ms a request; see ``kms.api.serving``);
its real answers are checked against the schema in the tests."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from kms.api import serving
from kms.api.base import ApiView, valid_query
from kms.search import search

from . import serializers as api


class Search(ApiView):
    def customer_data(self, request) -> bool:
        return bool(request.query_params.get("user"))  # re-ranked by that user's history

    @extend_schema(parameters=[api.SearchQuery], responses=api.SearchResponse)
    def get(self, request):
        """Entities in the query (NLP), expanded through the graph, BM25 candidates, re-ranked for ``user``."""
        q = valid_query(api.SearchQuery, request)
        if not q["q"]:
            raise exceptions.ValidationError({"q": ["must not be blank"]})
        return Response(serving.search_list(search(q["q"], user=q.get("user") or None, k=q["k"]),
                                            q.get("user") or None))
