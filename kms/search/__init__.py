"""Product search: query understanding (NLP entities + graph expansion), BM25, personal re-ranking.

Plain services; the API view, a command or a task call ``search()``. The inverted index lives
in process memory and is rebuilt in the background when the catalogue or its facts change.
"""
from .services import search, search_index

__all__ = ["search", "search_index"]
