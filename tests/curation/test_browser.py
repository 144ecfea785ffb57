"""The portal in a real browser: Playwright (playwright-core) driving Debian's chromium against live_server."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kms.curation.models import AuditEntry
from kms.knowledge.models import Entity, Fact, Status
from kms.recs.models import ModelVersion

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "browser" / "portal_flow.js"
CHROMIUM = os.environ.get("KMS_CHROMIUM", "/usr/bin/chromium")


def _browser_missing() -> str:
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        return "chromium is not installed (scripts/setup_browser.sh installs it)"
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is not installed (npm ci)"
    if not shutil.which("node"):
        return "node is not installed"
    return ""


@pytest.fixture
def browser_ready():
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {missing}")
        pytest.skip(f"browser test skipped: {missing}")


@pytest.mark.django_db(transaction=True)
def test_curator_merges_and_approves_in_the_browser(browser_ready, live_server, kms_graph, catalogue, role_users,
                                                    portal_password):
    keep, drop = catalogue["entities"]["brand:stanley"], catalogue["entities"]["brand:stanley-tools"]
    approve = catalogue["facts"]["p2_brand"]  # a Stanley Tools fact: after the merge it shows on Stanley's page
    untouched = catalogue["facts"]["p1_steel"]
    ModelVersion.objects.create(state="active", metrics={"test": {"fusion": {"recall@20": 0.11, "ndcg@20": 0.06}}},
                                history=[{"component": "lightgcn", "epoch": e, "loss": 1 / e,
                                          "valid_ndcg@20": 0.01 * e} for e in range(1, 6)])
    ModelVersion.objects.create(state="ready", metrics={"test": {"fusion": {"recall@20": 0.13, "ndcg@20": 0.07}}})
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    env = os.environ | {"BASE_URL": live_server.url, "PASSWORD": portal_password, "KEEP_NAME": keep.name,
                        "DROP_UID": drop.uid, "APPROVE_FACT": str(approve.pk), "REJECT_FACT": str(untouched.pk),
                        "ARTIFACTS": str(artifacts), "CHROMIUM": CHROMIUM}
    run = subprocess.run(["node", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stderr[-4000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    # what the browser saw
    assert "curator" in seen["role"] and {"Stanley", "Stanley Tools"} <= set(seen["search_results"])
    assert "merged brand:stanley-tools into brand:stanley" in seen["after_merge_message"]
    assert "Stanley Tools" in seen["aliases"] and seen["approved_status"].strip() == "approved"
    assert {"brand:stanley", "product:p1", "product:p2", "product:p3"} <= set(seen["graph_nodes"])
    assert seen["metric_charts"] == 3
    assert "viewer" in seen["viewer_role"] and seen["viewer_fact_rows"] == 3
    assert seen["viewer_approve_buttons"] == 0 and seen["viewer_merge_form"] == 0
    assert seen["viewer_post_status"] == 403

    # the database, the graph store and the audit trail
    drop.refresh_from_db()
    assert drop.merged_into_id == keep.pk
    assert Fact.objects.get(pk=approve.pk).status == Status.APPROVED
    assert Fact.objects.get(pk=untouched.pk).status == Status.AUTO
    assert kms_graph.node("brand:stanley-tools") is None
    assert "Stanley Tools" in kms_graph.node("brand:stanley")["aliases"]
    p2 = {r["dst"]: r["props"]["status"] for r in kms_graph.relationships_of("product:p2") if r["type"] == "HAS_BRAND"}
    assert p2 == {"brand:stanley": "approved"}
    trail = list(AuditEntry.objects.order_by("id").values_list("action", "user__username", "reason"))
    assert trail == [("entity_merge", "curator", "duplicate brand (browser test)"), ("fact_status", "curator", "")]
    assert Entity.objects.filter(merged_into=keep).count() == 1
    for name in ("entity-page.png", "metrics-page.png"):
        assert (artifacts / name).stat().st_size > 10_000
