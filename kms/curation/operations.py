"""Portal operations pages: ingestion jobs, model versions and their curves, graph and outbox
statistics. Same decorators as the curation pages (``kms.curation.views``)."""
from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from kms.knowledge.models import Entity, Fact, IngestionJob
from kms.recs.models import ModelVersion

from . import charts, services
from .models import OutboxEntry
from .roles import ADMINISTER, VIEW
from .views import curation_action, role_required


@role_required(VIEW)
@require_GET
def jobs(request):
    return render(request, "curation/jobs.html", {"jobs": IngestionJob.objects.all()[:20]})


@role_required(VIEW)
@require_GET
def jobs_json(request):
    from kms.knowledge.services import job_progress

    return JsonResponse({"jobs": [job_progress(j) for j in IngestionJob.objects.all()[:20]]})


@role_required(ADMINISTER)
@curation_action
def jobs_start(request):
    from kms.knowledge.tasks import start_ingestion

    job = start_ingestion(None, force=request.POST.get("force") == "on")
    messages.success(request, f"started ingestion job {job.pk}")
    return HttpResponseRedirect(reverse("curation:jobs"))


def _quality_key(key: str) -> bool:
    k = key.lower()
    return "recall" in k or "ndcg" in k


EVALUATION_KEYS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")


def _evaluation_rows(version: ModelVersion) -> dict:
    """``manage.py evaluate``'s stored result as table rows: served, components, baselines."""
    ev = version.evaluation if isinstance(version.evaluation, dict) else {}

    def named(value) -> list:
        return list(value.items()) if isinstance(value, dict) else []

    rows = [("served", ev.get("served"))] + named(ev.get("components"))
    rows += [(f"baseline: {n}", m) for n, m in named(ev.get("baselines"))]
    return {"version": version, "users": ev.get("users"), "evaluated_at": str(ev.get("evaluated_at", "")),
            "rows": [(name, [m.get(k) if isinstance(m, dict) else None for k in EVALUATION_KEYS])
                     for name, m in rows]}


@role_required(VIEW)
@require_GET
def models(request):
    versions = list(ModelVersion.objects.order_by("id"))
    flat = {v.pk: charts.flatten_numbers(v.metrics or {}) for v in versions}
    groups = sorted({k.rsplit(".", 1)[0] if "." in k else "" for m in flat.values() for k in m if _quality_key(k)})
    group = request.GET.get("group") or ("test.fusion" if "test.fusion" in groups else (groups[0] if groups else ""))
    keys = sorted({k for m in flat.values() for k in m if _quality_key(k)
                   and (k.rsplit(".", 1)[0] if "." in k else "") == group})
    quality = charts.line_chart({k.rsplit(".", 1)[-1]: [(v.pk, flat[v.pk].get(k)) for v in versions] for k in keys},
                                f"Recall / NDCG across versions ({group or 'all'})", "model version")
    with_history = [v for v in versions if v.history]
    chosen = next((v for v in with_history if str(v.pk) == request.GET.get("version")),
                  with_history[-1] if with_history else None)
    loss_chart = valid_chart = None
    if chosen is not None:
        loss, valid = {}, {}
        for n, point in enumerate(p for p in chosen.history if isinstance(p, dict)):
            x = point.get("epoch", n)
            comp = str(point.get("component", "")) + (" refit" if point.get("stage") == "refit" else "")
            for k, val in charts.flatten_numbers({k: v for k, v in point.items() if k not in ("epoch", "stage")}).items():
                name = f"{comp} {k}".strip()
                (loss if "loss" in k.lower() else valid).setdefault(name, []).append((x, val))
        loss_chart = charts.line_chart(loss, f"Training loss, v{chosen.pk}", "epoch")
        valid_chart = charts.line_chart(valid, f"Validation, v{chosen.pk}", "epoch")
    table_keys = sorted({k for m in flat.values() for k in m if _quality_key(k)})
    return render(request, "curation/models.html", {
        "evaluations": [_evaluation_rows(v) for v in reversed(versions) if v.evaluation],
        "versions": list(reversed(versions)), "quality": quality, "groups": groups, "group": group,
        "loss_chart": loss_chart, "valid_chart": valid_chart, "chosen": chosen, "with_history": with_history,
        "table_keys": [k for k in table_keys if k.startswith(group)][:8],
        "table": {v.pk: flat[v.pk] for v in versions}, "evaluation_keys": EVALUATION_KEYS})


@role_required(VIEW)
@require_GET
def stats(request):
    by_type = list(Entity.objects.filter(merged_into__isnull=True).values("type").annotate(n=Count("id")).order_by("-n"))
    by_status = list(Fact.objects.values("status").annotate(n=Count("id")).order_by("status"))
    by_relation = list(Fact.objects.values("relation").annotate(n=Count("id")).order_by("-n"))
    growth = {}
    for label, model in (("facts", Fact), ("entities", Entity)):
        total, points = 0, []
        for row in model.objects.annotate(day=TruncDate("created_at")).values("day").annotate(n=Count("id")).order_by("day"):
            total += row["n"]
            points.append((row["day"].toordinal(), total))
        growth[label] = points
    first = min((p[0] for pts in growth.values() for p in pts), default=0)
    growth_chart = charts.line_chart({k: [(x - first, y) for x, y in v] for k, v in growth.items()},
                                     "Growth (cumulative)", "days since the first record")
    graph_counts, graph_error = {}, ""
    try:
        from kms.graphstore import get_graph_store

        store = get_graph_store()
        graph_counts = store.count_nodes() if store.ping() else {}
        graph_error = "" if graph_counts else "graph store unreachable"
    except Exception as exc:
        graph_error = f"{type(exc).__name__}: {exc}"
    outbox = Counter(dict(OutboxEntry.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n")))
    return render(request, "curation/stats.html", {
        "by_type": by_type, "by_status": by_status, "by_relation": by_relation, "growth_chart": growth_chart,
        "graph_counts": graph_counts, "graph_error": graph_error, "outbox": outbox,
        "outbox_failing": OutboxEntry.objects.filter(state=OutboxEntry.State.PENDING, attempts__gt=0)[:10]})


@role_required(ADMINISTER)
@curation_action
def outbox_deliver(request):
    result = services.deliver_outbox()
    (messages.success if not result.error else messages.warning)(
        request, f"delivered {result.delivered}, pending {result.pending} {result.error}".strip())
    return HttpResponseRedirect(reverse("curation:stats"))
