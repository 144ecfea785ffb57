"""Portal views: thin callers of ``kms.curation.services``; every one checks its role permission.

The curation pages (entities, facts, review, audit, attribute schemas) and the decorators every
portal page uses (``role_required``, ``curation_action``); the operations pages (jobs, models,
graph statistics, outbox) are ``kms.curation.operations``."""
from __future__ import annotations

import functools
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db.models import Count, TextField
from django.db.models.functions import Cast
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from kms.knowledge.models import Entity, Status

from . import services
from .models import AuditEntry
from .roles import ADMINISTER, CURATE, VIEW


def role_required(perm: str):
    """Anonymous users go to the login page; signed-in users without the permission get 403."""
    def decorate(view):
        return login_required(permission_required(perm, raise_exception=True)(view))
    return decorate


def _back(request, default: str) -> HttpResponseRedirect:
    target = request.POST.get("next") or request.META.get("HTTP_REFERER") or default
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = default
    return HttpResponseRedirect(target)


def curation_action(view):
    """POST only; a CurationError becomes a message on the page the curator came from (400 for API-ish clients)."""
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except services.CurationError as exc:
            messages.error(request, str(exc))
            if request.headers.get("Accept", "").startswith("application/json"):
                return JsonResponse({"error": str(exc)}, status=400)
            return _back(request, reverse("curation:entities"))
    return require_POST(wrapper)


def _reason(request) -> str:
    return request.POST.get("reason", "").strip()[:2000]


def _lines(text: str) -> list[str]:
    return [a.strip() for a in (text or "").replace(",", "\n").splitlines() if a.strip()]


# --- entities ------------------------------------------------------------------------------------
SORTS = {"degree": ("-degree", "name"), "facts": ("-n_facts", "name"), "name": ("name",), "type": ("type", "name")}


@role_required(VIEW)
@require_GET
def entity_list(request):
    q, etype = request.GET.get("q", "").strip(), request.GET.get("type", "")
    include_merged = request.GET.get("merged") == "1"
    sort = request.GET.get("sort", "degree")
    qs = services.entity_queryset(q, etype, include_merged).order_by(*SORTS.get(sort, SORTS["degree"]))
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(request, "curation/entity_list.html", {
        "page": page, "q": q, "type": etype, "merged": include_merged, "sort": sort,
        "types": services.ENTITY_TYPES})


@role_required(VIEW)
@require_GET
def entity_search_json(request):
    q = request.GET.get("q", "").strip()
    qs = services.entity_queryset(q, request.GET.get("type", "")).order_by("-degree", "name")[:20]
    return JsonResponse({"results": [{"id": e.pk, "uid": e.uid, "name": e.name, "type": e.type,
                                      "facts": e.n_facts} for e in qs]})


def _fact_rows(facts) -> list[dict]:
    rows = []
    for f in facts:
        pre, span, post = services.highlighted_span(f)
        rows.append({"fact": f, "pre": pre, "span": span, "post": post})
    return rows


@role_required(VIEW)
@require_GET
def entity_detail(request, pk: int):
    entity = get_object_or_404(Entity.objects.select_related("merged_into"), pk=pk)
    status = request.GET.get("status", "")
    facts = entity.facts.select_related("product", "curated_by", "entity").order_by("status", "confidence", "id")
    if status:
        facts = facts.filter(status=status)
    elif request.GET.get("include") != "candidate":
        # candidates (under their relation's threshold) are listed only when asked for; they are
        # in the review queue either way
        facts = facts.exclude(status=Status.CANDIDATE)
    page = Paginator(facts, 100).get_page(request.GET.get("page"))
    counts = dict(entity.facts.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return render(request, "curation/entity_detail.html", {
        "entity": entity, "page": page, "rows": _fact_rows(page.object_list), "status": status,
        "counts": counts, "merged": entity.merged.all().order_by("name"),
        "audit": AuditEntry.objects.annotate(uids=Cast("entity_uids", TextField()))
        .filter(uids__contains=json.dumps(entity.uid)).select_related("user")[:20],
        "relations": services.FACT_RELATIONS, "types": services.ENTITY_TYPES,
    })


@role_required(VIEW)
@require_GET
def graph_json(request):
    uid = request.GET.get("uid", "")
    if ":" not in uid:
        return JsonResponse({"error": "uid required"}, status=400)
    try:
        return JsonResponse(services.graph_neighbourhood(uid, limit=int(request.GET.get("limit", 60))))
    except Exception as exc:  # the page still works when the graph store is down
        return JsonResponse({"error": f"graph store unavailable: {type(exc).__name__}"}, status=503)


@role_required(CURATE)
@curation_action
def entity_create(request):
    entry = services.create_entity(request.user, request.POST.get("type", ""), request.POST.get("name", ""),
                                   _lines(request.POST.get("aliases", "")), _reason(request))
    messages.success(request, entry.summary)
    return HttpResponseRedirect(reverse("curation:entity", args=[entry.after["entity"]["id"]]))


@role_required(CURATE)
@curation_action
def entity_rename(request, pk: int):
    aliases = _lines(request.POST["aliases"]) if "aliases" in request.POST else None
    entry = services.rename_entity(request.user, pk, request.POST.get("name", ""), aliases,
                                   keep_old_name_as_alias=request.POST.get("keep_old") == "on", reason=_reason(request))
    messages.success(request, entry.summary)
    return HttpResponseRedirect(reverse("curation:entity", args=[pk]))


@role_required(CURATE)
@curation_action
def entity_merge(request, pk: int):
    """Merge the entity named in ``other`` into this one (or this one into it, with direction=into)."""
    other = services._live_entity(request.POST.get("other", "").strip())
    keep, drop = (other.pk, pk) if request.POST.get("direction") == "into" else (pk, other.pk)
    entry = services.merge_entities(request.user, keep, drop, _reason(request))
    messages.success(request, entry.summary)
    return HttpResponseRedirect(reverse("curation:entity", args=[keep]))


@role_required(CURATE)
@curation_action
def entity_split(request, pk: int):
    entry = services.split_entity(request.user, pk, request.POST.get("name", ""),
                                  request.POST.getlist("fact_ids"), _lines(request.POST.get("aliases", "")),
                                  _reason(request))
    messages.success(request, entry.summary)
    return HttpResponseRedirect(reverse("curation:entity", args=[entry.after["new"]["id"]]))


@role_required(ADMINISTER)
@curation_action
def entity_delete(request, pk: int):
    entry = services.delete_entity(request.user, pk, _reason(request))
    messages.success(request, entry.summary)
    return HttpResponseRedirect(reverse("curation:entities"))


# --- facts ---------------------------------------------------------------------------------------
STATUS_ACTIONS = {"approve": Status.APPROVED, "reject": Status.REJECTED, "reset": Status.AUTO}


@role_required(CURATE)
@curation_action
def facts_bulk(request):
    """Approve/reject/reset the ticked facts, or the one fact whose row button was pressed."""
    row = request.POST.get("row_action", "")
    if row:
        action, _, fact_id = row.partition(":")
        ids = [fact_id]
    else:
        action, ids = request.POST.get("action", ""), request.POST.getlist("fact_ids")
    if action not in STATUS_ACTIONS:
        raise services.CurationError("choose approve, reject or reset")
    entry = services.set_fact_status(request.user, ids, STATUS_ACTIONS[action], _reason(request))
    messages.success(request, entry.summary)
    return _back(request, reverse("curation:review"))


@role_required(CURATE)
@curation_action
def fact_edit(request, pk: int):
    entry = services.edit_fact(request.user, pk, relation=request.POST.get("relation") or None,
                               entity=request.POST.get("entity", "").strip() or None,
                               value=request.POST.get("value"), unit=request.POST.get("unit"),
                               reason=_reason(request))
    messages.success(request, entry.summary)
    return _back(request, reverse("curation:review"))


@role_required(VIEW)
@require_GET
def review(request):
    relation, etype = request.GET.get("relation", ""), request.GET.get("type", "")
    page = Paginator(services.review_queue(relation, etype), 50).get_page(request.GET.get("page"))
    return render(request, "curation/review.html", {
        "page": page, "rows": _fact_rows(page.object_list), "relation": relation, "type": etype,
        "relations": services.FACT_RELATIONS, "types": services.ENTITY_TYPES})


# --- audit ---------------------------------------------------------------------------------------
@role_required(VIEW)
@require_GET
def audit(request):
    qs = AuditEntry.objects.select_related("user", "revert_of", "reverted_by").order_by("-id")
    if request.GET.get("action"):
        qs = qs.filter(action=request.GET["action"])
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(request, "curation/audit.html", {"page": page, "actions": AuditEntry.Action.choices,
                                                  "action": request.GET.get("action", "")})


@role_required(CURATE)
@curation_action
def audit_revert(request, pk: int):
    entry = services.revert(request.user, pk, _reason(request))
    messages.success(request, entry.summary)
    return _back(request, reverse("curation:audit"))


def home(request):
    return HttpResponseRedirect(reverse("curation:entities"))


# --- attribute schemas per category (nlp.attributes) -------------------------------------------
@role_required(VIEW)
@require_GET
def attribute_schemas(request):
    from kms.knowledge.models import AttributeDefinition

    category = request.GET.get("category", "").strip()
    qs = AttributeDefinition.objects.all()
    categories = list(qs.values_list("category", flat=True).distinct().order_by("category"))
    if category:
        qs = qs.filter(category__iexact=category)
    edit = None
    if request.GET.get("edit"):
        edit = AttributeDefinition.objects.filter(pk=request.GET["edit"]).first()
    return render(request, "curation/attributes.html", {
        "attributes": qs, "categories": categories, "category": category, "edit": edit})


@role_required(CURATE)
@require_POST
def attribute_save(request):
    from kms.knowledge.attributes import SchemaError, save_attribute

    pk = request.POST.get("pk") or None
    try:
        d = save_attribute(request.POST.get("category", ""), request.POST.get("name", ""),
                           [v.strip() for v in request.POST.get("values", "").splitlines()],
                           [v.strip() for v in request.POST.get("patterns", "").splitlines()],
                           pk=int(pk) if pk else None)
    except (SchemaError, ValueError) as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("curation:attributes"))
    messages.success(request, f"saved {d.category}: {d.name}")
    return HttpResponseRedirect(reverse("curation:attributes") + f"?category={d.category}")


@role_required(CURATE)
@require_POST
def attribute_delete(request, pk: int):
    from kms.knowledge.attributes import delete_attribute

    delete_attribute(pk)
    messages.success(request, "attribute deleted")
    return _back(request, reverse("curation:attributes"))
