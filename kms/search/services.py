"""``search(query, user, k)``: understand, retrieve (BM25 + graph matches), re-rank for the user."""
from __future__ import annotations

import logging
import re
from collections import Counter

import numpy as np

from kms.events.models import Interaction

from .index import SearchIndexCache
from .text import STOPWORDS, analyze, fold, stem, words
from .understanding import expand, recognise

log = logging.getLogger(__name__)
search_index = SearchIndexCache()

# How much a graph match adds to the normalised BM25 score (which is at most 1).
ENTITY_BOOST = {"BRAND": 0.6, "PRODUCT_TYPE": 0.5, "MODEL_NUMBER": 0.8, "MEASURE": 0.3,
                "MATERIAL": 0.2, "COLOR": 0.2}
COMPATIBLE_BOOST = 0.4
ALIAS_TERM_WEIGHT = 0.5
PERSONAL_WEIGHT = {"brand": 0.25, "category": 0.25, "recommender": 0.2}
CANDIDATES = 200
HISTORY_LIMIT = 200


def user_history(external_id: str) -> list[str]:
    """The user's most recent products (one query)."""
    return list(Interaction.objects.filter(user__external_id=external_id).order_by("-timestamp", "-id")
                .values_list("product__external_id", flat=True)[:HISTORY_LIMIT])


def _personal_scores(index, rows: np.ndarray, user: str, history: list[str]) -> tuple[np.ndarray, list[str]]:
    """Brand and category affinity from the user's history, and the recommender's score if it knows them."""
    seen = [index.row[e] for e in history if e in index.row]
    scores = np.zeros(rows.size, dtype=np.float32)
    signals = []
    if seen:
        brands = Counter(index.brand_keys[r] for r in seen if index.brand_keys[r])
        cats = Counter(index.leaf_category[r] for r in seen if index.leaf_category[r])
        total = len(seen)
        scores += PERSONAL_WEIGHT["brand"] * np.fromiter(
            (brands.get(index.brand_keys[r], 0) / total for r in rows), dtype=np.float32, count=rows.size)
        scores += PERSONAL_WEIGHT["category"] * np.fromiter(
            (cats.get(index.leaf_category[r], 0) / total for r in rows), dtype=np.float32, count=rows.size)
        signals += ["brand-affinity", "category-affinity"]
    try:
        from kms.recs.services import index_cache

        rec_index = index_cache.get()
    except Exception:
        rec_index = None
    user_uid = f"user:{user}"
    if rec_index is not None and history:
        known = user_uid in getattr(rec_index, "user_index", {})  # precomputed list: a lookup, no matmul
        ranked = rec_index.recommend(user_uid, 200, exclude=set(),
                                     history=None if known else [f"product:{e}" for e in history])
        if ranked:
            top = max(s for _, s in ranked) or 1.0
            by_ext = {uid.split(":", 1)[1]: s / top for uid, s in ranked}
            scores += PERSONAL_WEIGHT["recommender"] * np.fromiter(
                (by_ext.get(index.ext_ids[r], 0.0) for r in rows), dtype=np.float32, count=rows.size)
            signals.append("recommender")
    return scores, signals


# The parts of the ranking, each of which the relevance benchmark switches off in turn
# (bench/search_relevance.py); the API always runs with all of them.
FEATURES = {"graph": True, "units": True, "spelling": True, "title_field": True, "category": True,
            "no_match": True, "accessory": True, "placeholder": True, "personal": True}
# Settings of those parts, chosen on the dev half of the judged queries (bench/search_relevance.py --tune).
SETTINGS = {
    "title_weight": 0.5,         # share of the lexical score from title + brand (the rest: all text)
    "category_prf": 0.3,         # boost of the leaf categories the best title matches fall in, by share
    "no_match_coverage": 0.5,    # below this share of the query (idf-weighted) in any product: no good match
    "accessory_penalty": 0.5,    # "blade for utility knife" when the query asks for the knife
    "placeholder_penalty": 0.5,
}
CATEGORY_PRF_DEPTH = 10
_ALPHA_WORD = re.compile(r"\b[A-Za-z]+\b")


def correct_spelling(query: str, index) -> tuple[str, dict[str, str]]:
    """The query with words the catalogue never uses replaced by their nearest catalogue word."""
    if index.spelling is None:
        return query, {}
    corrections = {}

    def fix(m):
        word = m.group(0)
        key = stem(fold(word))
        if not key or key in STOPWORDS or key in index.spelling.frequency:
            return word
        better = index.spelling.correct(key)
        if better is None:
            return word
        corrections[word] = better
        return better

    return _ALPHA_WORD.sub(fix, query), corrections


def _coverage(index, terms: list[str], rows: np.ndarray) -> np.ndarray:
    """Idf-weighted share of the distinct query terms each product contains (terms the catalogue
    never uses count against every product)."""
    unique = list(dict.fromkeys(terms))
    if not unique or rows.size == 0:
        return np.zeros(rows.size, dtype=np.float32)
    bm25 = index.bm25
    unknown_idf = float(bm25.idf.max()) if bm25.idf.size else 1.0
    total, have = 0.0, np.zeros(rows.size, dtype=np.float32)
    lookup = {int(r): n for n, r in enumerate(rows)}
    for t in unique:
        col = bm25.vocabulary.get(t)
        idf = float(bm25.idf[col]) if col is not None else unknown_idf
        total += idf
        if col is None:
            continue
        w = bm25.weights
        for r in w.indices[w.indptr[col]:w.indptr[col + 1]]:
            n = lookup.get(int(r))
            if n is not None:
                have[n] += idf
    return have / total if total else have


def search(query: str, user: str | None = None, k: int = 20, features: dict | None = None) -> dict:
    """Ranked products for ``query`` and how it was understood. ``features`` switches parts of the
    ranking off or changes their settings (``FEATURES``, ``SETTINGS``): the relevance benchmark's
    ablations; the API never passes it."""
    on = FEATURES | {k: v for k, v in (features or {}).items() if k in FEATURES}
    setting = SETTINGS | {k: v for k, v in (features or {}).items() if k in SETTINGS}
    index = search_index.get()
    corrections = {}
    understood_query = query
    if on["spelling"]:
        understood_query, corrections = correct_spelling(query, index)
    entities, recognisers = recognise(understood_query, index)
    if not on["units"]:
        entities = [e for e in entities if e.label != "MEASURE"]
    terms = analyze(understood_query)
    if not on["units"]:
        terms = [t for t in terms if not t.startswith("m:")]
    query_terms = list(terms)
    weights = [1.0] * len(terms)
    boost = np.zeros(index.size, dtype=np.float32)
    matched: dict[int, set[str]] = {}
    for entity in entities:
        exp = expand(entity, index)
        if not on["graph"]:
            continue
        boost[exp["rows"]] += ENTITY_BOOST.get(entity.label, 0.2)
        boost[exp["compatible"]] += COMPATIBLE_BOOST
        for alias in exp["alias_terms"]:
            alias_words = words(alias)
            terms += alias_words
            weights += [ALIAS_TERM_WEIGHT] * len(alias_words)
        for r in exp["rows"][:5000]:
            matched.setdefault(int(r), set()).add(entity.label.lower())
        for r in exp["compatible"][:5000]:
            matched.setdefault(int(r), set()).add("compatible")
    lexical = index.bm25.scores(terms, weights) if index.size else np.zeros(0, dtype=np.float32)
    top_lexical = float(lexical.max()) if lexical.size else 0.0
    lexical_norm = lexical / top_lexical if top_lexical > 0 else lexical
    title = None
    if on["title_field"] and index.title_bm25 is not None and index.size:
        title = index.title_bm25.scores(terms, weights)
        top_title = float(title.max())
        title = title / top_title if top_title > 0 else title
        lexical_norm = (1 - setting["title_weight"]) * lexical_norm + setting["title_weight"] * title
    if on["category"] and index.size and not any(e.label == "PRODUCT_TYPE" for e in entities):
        boost += _category_prior(index, title if title is not None else lexical_norm, setting["category_prf"])
    relevance = lexical_norm + boost
    candidates = np.flatnonzero(relevance > 0)
    if candidates.size > CANDIDATES:
        candidates = candidates[np.argpartition(-relevance[candidates], CANDIDATES)[:CANDIDATES]]
    relevance = relevance.copy()
    if on["accessory"] and candidates.size:
        asked = _type_words(entities, understood_query)
        for r in candidates:
            r = int(r)
            if asked & index.title_words[r] and not asked & index.title_head[r]:
                relevance[r] *= 1 - setting["accessory_penalty"]
    if on["placeholder"] and index.placeholder is not None and candidates.size:
        relevance[candidates[index.placeholder[candidates]]] *= 1 - setting["placeholder_penalty"]
    no_match = False
    if on["no_match"] and candidates.size:
        if _coverage(index, query_terms, candidates).max() < setting["no_match_coverage"]:
            no_match, candidates = True, candidates[:0]
    history = user_history(user) if user else []
    personal, signals = (_personal_scores(index, candidates, user, history) if user and on["personal"]
                         else (np.zeros(candidates.size, dtype=np.float32), []))
    final = relevance[candidates] + personal
    order = np.argsort(-final, kind="stable")[:k]
    items = []
    for o in order:
        r = int(candidates[o])
        items.append({"product": index.ext_ids[r], "title": index.titles[r], "brand": index.brands[r],
                      "score": round(float(final[o]), 6), "relevance": round(float(relevance[r]), 6),
                      "personal": round(float(personal[o]), 6),
                      "matched": sorted(matched.get(r, set()) | ({"text"} if lexical[r] > 0 else set()))})
    return {
        "query": query,
        "understood": {"entities": [e.as_dict() for e in entities], "terms": terms,
                       "recognisers": recognisers, "corrections": corrections, "no_good_match": no_match},
        "user": ({"id": user, "history": len(history), "personalised": bool(signals), "signals": signals}
                 if user else None),
        "index": {"products": index.size, "graph": index.graph_source,
                  "build_seconds": round(index.build_seconds, 3)},
        "total_candidates": 0 if no_match else int(np.count_nonzero(relevance > 0)),
        "items": items,
    }


def _type_words(entities, query: str) -> frozenset:
    """What the shopper asks for: the product-type entity's words, else the query's plain words."""
    types = [e for e in entities if e.label == "PRODUCT_TYPE"]
    if types:
        return frozenset(w for e in types for w in words(e.text))
    other = {w for e in entities for w in words(e.text)}
    return frozenset(w for w in words(query) if w not in other)


def _category_prior(index, scores: np.ndarray, weight: float) -> np.ndarray:
    """Products in the leaf categories of the best title matches, by the share of those matches."""
    out = np.zeros(index.size, dtype=np.float32)
    top = np.flatnonzero(scores > 0)
    if top.size == 0:
        return out
    top = top[np.argsort(-scores[top], kind="stable")[:CATEGORY_PRF_DEPTH]]
    leaves = Counter(index.leaf_category[r] for r in top if index.leaf_category[r])
    for leaf, n in leaves.items():
        rows = index.entity_docs.get(f"category:{leaf}")
        if rows is not None and n >= 2:
            out[rows] += weight * n / top.size
    return out


def similar_by_content(external_id: str, k: int = 20) -> list[dict]:
    """Cold-start neighbours of a product: its own title and brand as a BM25 query, plus the same
    brand and leaf category from the graph features. Works before the model has seen the product."""
    from kms.catalogue.models import Product

    index = search_index.get()
    row = index.row.get(external_id)
    if row is not None:
        title, brand, leaf, brand_key = (index.titles[row], index.brands[row], index.leaf_category[row],
                                         index.brand_keys[row])
    else:  # posted after the last index build: read it once
        p = Product.objects.filter(external_id=external_id).values_list("title", "brand", "category_path").first()
        if p is None:
            return []
        from .index import category_keys

        title, brand = p[0], p[1]
        keys = category_keys(p[2])
        leaf = keys[-1] if keys else None
        brand_key = index.kb.link("BRAND", brand) if brand else None
    scores = index.bm25.scores(analyze(f"{title} {brand}")) if index.size else np.zeros(0, dtype=np.float32)
    if scores.size and scores.max() > 0:
        scores = scores / scores.max()
    if leaf and f"category:{leaf}" in index.entity_docs:
        scores[index.entity_docs[f"category:{leaf}"]] += 0.3
    if brand_key and f"brand:{brand_key}" in index.entity_docs:
        scores[index.entity_docs[f"brand:{brand_key}"]] += 0.2
    if row is not None:
        scores[row] = 0.0
    top = np.flatnonzero(scores > 0)
    top = top[np.argsort(-scores[top], kind="stable")[:k]]
    return [{"product": index.ext_ids[r], "title": index.titles[r], "brand": index.brands[r],
             "score": round(float(scores[r]), 6)} for r in top]
