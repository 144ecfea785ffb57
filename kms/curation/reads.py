"""Reads for the portal: entity lists, the review queue, source text spans, graph neighbourhoods."""
from __future__ import annotations

import logging

from django.db.models import Count, F, FloatField, Q, TextField, Value
from django.db.models.functions import Cast, Coalesce, Ln
from django.db.models import OuterRef, Subquery

from kms.catalogue.models import Product
from kms.events.models import Interaction
from kms.knowledge.models import Entity, Fact, Status

log = logging.getLogger(__name__)

# --- reads for the portal ----------------------------------------------------------------------
def entity_queryset(q: str = "", entity_type: str = "", include_merged: bool = False):
    qs = Entity.objects.annotate(n_facts=Count("facts"), degree=Count("facts__product", distinct=True))
    if not include_merged:
        qs = qs.filter(merged_into__isnull=True)
    if entity_type:
        qs = qs.filter(type=entity_type.upper())
    if q:
        qs = qs.annotate(aliases_text=Cast("aliases", TextField())).filter(
            Q(name__icontains=q) | Q(uid__icontains=q) | Q(aliases_text__icontains=q))
    return qs


def review_queue(relation: str = "", entity_type: str = ""):
    """Extracted facts not yet decided (automatic ones and candidates, which are under their
    relation's threshold and so not in the graph), most in need of review first: low confidence and
    high impact.

    impact = degree × traffic (degree: facts of the fact's entity; traffic: interactions with the
    fact's product); priority = (1.05 − confidence) × ln(2 + impact), so among equally confident
    facts the busiest come first, and a much less confident fact outranks a busier one.
    """
    degree = Fact.objects.filter(entity=OuterRef("entity")).order_by().values("entity") \
        .annotate(c=Count("id")).values("c")
    traffic = Interaction.objects.filter(product=OuterRef("product")).order_by().values("product") \
        .annotate(c=Count("id")).values("c")
    qs = Fact.objects.filter(status__in=(Status.AUTO, Status.CANDIDATE)).select_related("entity", "product")
    if relation:
        qs = qs.filter(relation=relation)
    if entity_type:
        qs = qs.filter(entity__type=entity_type.upper())
    return qs.annotate(
        degree=Coalesce(Subquery(degree), 0), traffic=Coalesce(Subquery(traffic), 0),
    ).annotate(impact=F("degree") * F("traffic")).annotate(
        priority=(Value(1.05) - F("confidence")) * Ln(Value(2.0) + Cast(F("impact"), FloatField())),
    ).order_by("-priority", "confidence", "-impact", "id")


def source_text(product: Product, field: str) -> str:
    if field == "categories":
        return ",".join(product.category_path or [])
    return str(getattr(product, field, "") or "") if field in {"title", "description", "brand"} else ""


def highlighted_span(fact: Fact, context: int = 80) -> tuple[str, str, str]:
    """(before, span, after) around the fact's evidence in its source field, trimmed to ``context``."""
    text = source_text(fact.product, fact.field)
    start, end = fact.start, fact.end
    if not (text and start is not None and end is not None and 0 <= start <= end <= len(text)
            and (not fact.text or text[start:end] == fact.text)):
        pos = text.find(fact.text) if text and fact.text else -1
        if pos < 0:
            return "", fact.text, ""
        start, end = pos, pos + len(fact.text)
    pre, post = text[max(0, start - context):start], text[end:end + context]
    return ("…" if start > context else "") + pre, text[start:end], post + ("…" if end + context < len(text) else "")


def graph_neighbourhood(uid: str, limit: int = 60) -> dict:
    """Nodes and edges around ``uid`` from the graph store, for the portal's graph view."""
    from kms.graphstore import get_graph_store

    store = get_graph_store()
    centre = store.node(uid)
    rows = store.neighbours(uid, limit=limit)
    nodes = {uid: {"id": uid, "label": (centre or {}).get("name") or (centre or {}).get("title") or uid,
                   "kind": _kind(uid), "centre": True}}
    edges = []
    for r in rows:
        if r["uid"] is None:
            continue
        nodes.setdefault(r["uid"], {"id": r["uid"], "label": str(r["name"])[:80], "kind": _kind(r["uid"])})
        src, dst = (uid, r["uid"]) if r["direction"] == "out" else (r["uid"], uid)
        edges.append({"source": src, "target": dst, "type": r["rel"],
                      "status": (r["props"] or {}).get("status", ""),
                      "confidence": (r["props"] or {}).get("confidence")})
    return {"centre": uid, "found": centre is not None, "nodes": list(nodes.values()), "edges": edges}


def _kind(uid: str) -> str:
    return uid.split(":", 1)[0]
