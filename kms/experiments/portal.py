"""Portal pages of experiments: thin callers of ``kms.experiments.services`` and ``results``."""
from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from kms.curation import charts
from kms.curation.roles import ADMINISTER, VIEW
from kms.curation.views import role_required
from kms.recs.models import ModelVersion

from . import services
from .models import Experiment
from .results import METRICS, experiment_results


@role_required(VIEW)
@require_GET
def experiment_list(request):
    return render(request, "experiments/list.html", {
        "experiments": Experiment.objects.prefetch_related("arms__version")[:100],
        "versions": ModelVersion.objects.filter(state__in=services.SERVABLE).exclude(path="").order_by("-id")[:50],
        "active": services.recs.active_version(), "metrics": Experiment.Metric.values})


@role_required(VIEW)
@require_GET
def experiment_detail(request, pk: int):
    e = get_object_or_404(Experiment.objects.prefetch_related("arms__version"), pk=pk)
    result = experiment_results(e)
    series = {}
    for arm, points in result["over_time"].items():
        series[f"{arm} {e.metric}"] = [(n, p[e.metric]) for n, p in enumerate(points)]
    volume = {arm: [(n, p["impressions"]) for n, p in enumerate(points)] for arm, points in result["over_time"].items()}
    unit = result["bucket"]
    rows = [(arm, entry, [(m, entry["metrics"][m]) for m in METRICS]) for arm, entry in result["arms"].items()]
    return render(request, "experiments/detail.html", {
        "e": e, "result": result, "rows": rows, "metrics": METRICS,
        "rate_chart": charts.line_chart(series, f"{e.metric} per {unit} and arm", f"{unit} since the start"),
        "volume_chart": charts.line_chart(volume, f"lists served per {unit} and arm", f"{unit} since the start")})


def _action(view):
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except services.ExperimentError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(request.META.get("HTTP_REFERER") or reverse("experiments:list"))
    wrapper.__name__ = view.__name__
    return require_POST(wrapper)


def _reason(request) -> str:
    return request.POST.get("reason", "").strip()[:2000]


@role_required(ADMINISTER)
@_action
def experiment_start(request):
    variants = [{"version": int(v), "share": 1.0} for v in request.POST.getlist("variant") if v.isdigit()]
    try:
        numbers = {k: float(request.POST.get(k) or d) for k, d in
                   (("traffic", 1.0), ("alpha", 0.05), ("power", 0.8), ("baseline", 0.05), ("relative_mde", 0.1))}
        k = int(request.POST.get("k") or 10)
    except ValueError:
        raise services.ExperimentError("traffic, alpha, power, baseline, relative_mde and k must be numbers")
    e = services.start_experiment(request.POST.get("name", "").strip()[:100] or "experiment", variants,
                                  metric=request.POST.get("metric") or "ctr", k=k, user=request.user,
                                  reason=_reason(request), via="portal", **numbers)
    messages.success(request, f"started experiment {e.name}")
    return HttpResponseRedirect(reverse("experiments:detail", args=[e.pk]))


@role_required(ADMINISTER)
@_action
def experiment_act(request, pk: int, action: str):
    kwargs = {"user": request.user, "reason": _reason(request), "via": "portal"}
    if action == "stop":
        e = services.stop_experiment(pk, **kwargs)
    elif action == "promote":
        e = services.promote(pk, request.POST.get("arm", ""), **kwargs)
    else:
        e = services.rollback(pk, **kwargs)
    messages.success(request, f"experiment {e.name}: {e.state}")
    return HttpResponseRedirect(reverse("experiments:detail", args=[e.pk]))
