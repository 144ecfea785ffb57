"""A/B tests between model versions through the API, the command and the portal: stable
assignment, recommendation ids, buffered impressions, attribution by id and by window, results,
stop / promote / roll back (audited), and an experiment that outlives a restart."""
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kms.experiments.assignment import arm_for

ROOT = Path(__file__).resolve().parents[2]
ARMS = (("control", 1.0), ("variant-1", 1.0))


def test_assignment_is_the_same_in_another_process_and_follows_the_shares():
    users = [f"user-{n}" for n in range(3000)]
    here = [arm_for("salt-1", u, 0.5, ARMS) for u in users]
    code = ("import json, sys; from kms.experiments.assignment import arm_for; "
            f"print(json.dumps([arm_for('salt-1', f'user-{{n}}', 0.5, {ARMS!r}) for n in range(3000)]))")
    # another interpreter with another hash seed: what another worker or a restarted one computes
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert json.loads(out.stdout) == here
    inside = [a for a in here if a is not None]
    assert abs(len(inside) / len(users) - 0.5) < 0.03  # traffic share
    assert abs(inside.count("control") / len(inside) - 0.5) < 0.04  # equal shares
    weighted = [arm_for("salt-2", u, 1.0, (("control", 3.0), ("variant-1", 1.0))) for u in users]
    assert abs(weighted.count("variant-1") / len(users) - 0.25) < 0.03
    assert [arm_for("salt-3", u, 1.0, ARMS) for u in users] != [arm_for("salt-1", u, 1.0, ARMS) for u in users]


def _recommend(client, user, k=5, params=""):
    r = client.get(f"/api/v1/users/{user}/recommendations?k={k}{params}")
    assert r.status_code == 200, r.content
    return r.json()


@pytest.mark.django_db(transaction=True)
def test_experiment_through_the_api(write_client, read_client, two_versions, settings):
    from kms.curation.models import AuditEntry
    from kms.events.models import ShopUser
    from kms.experiments.attribution import attribute_pending, settle_seconds
    from kms.experiments.impressions import buffer
    from kms.experiments.models import Attribution, Experiment, Impression
    from kms.experiments.serving import version_indexes
    from kms.experiments.services import running
    from kms.recs.services import active_version

    control, variant = two_versions
    r = write_client.post("/api/v1/experiments", {"name": "pop-vs-itemcf", "variants": [{"version": variant.pk}],
                                                  "baseline": 0.1, "relative_mde": 0.2}, format="json")
    assert r.status_code == 201, r.content
    exp = r.json()
    assert exp["users_per_arm"] == 3839 and [a["version"] for a in exp["arms"]] == [control.pk, variant.pk]
    second = write_client.post("/api/v1/experiments", {"name": "second", "variants": [{"version": variant.pk}]},
                               format="json")
    assert second.status_code == 409  # one at a time
    assert set(second.json()) == {"error"} and second.json()["error"]["code"] == "conflict"  # the documented shape
    for bad in ({"traffic": 0}, {"control_share": 0}, {"variants": [{"version": variant.pk, "share": 0}]}):
        zero = write_client.post("/api/v1/experiments", {"name": "zero", "variants": [{"version": variant.pk}]} | bad,
                                 format="json")
        assert zero.status_code == 400, (bad, zero.content)  # refused by the contract, not by the service's 409
    e = Experiment.objects.get(pk=exp["id"])
    versions = {"control": control.pk, "variant-1": variant.pk}

    users = list(ShopUser.objects.values_list("external_id", flat=True)[:40])
    served = {}
    with CaptureQueriesContext(connection) as queries:
        for u in users:
            body = _recommend(read_client, u)
            arm = arm_for(e.salt, u, 1.0, ARMS)
            assert body["model_version"] == versions[arm] and body["experiment"] == {"id": e.pk, "arm": arm}
            assert len(body["recommendation_id"]) == 32
            assert [i["position"] for i in body["items"]] == list(range(1, len(body["items"]) + 1))
            served[u] = body
    assert not [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert {b["experiment"]["arm"] for b in served.values()} == {"control", "variant-1"}
    # lists differ between the arms' versions (popularity vs item-CF)
    assert len({tuple(i["product"] for i in b["items"]) for b in served.values()}) > 1

    # a restart: process caches gone, the experiment is a row; every user keeps the arm
    running.clear()
    version_indexes.clear()
    for u in users[:10]:
        assert _recommend(read_client, u)["model_version"] == served[u]["model_version"]

    buffer.flush()
    assert Impression.objects.filter(experiment=e).count() == len(users) + 10

    # attribution: by id, by window, none
    u1, u2, u3 = users[:3]
    shown = served[u1]["items"][2]["product"]
    rid = served[u1]["recommendation_id"]
    r = write_client.post("/api/v1/events", [
        {"user": u1, "product": shown, "type": "click", "recommendation_id": rid},
        {"user": u2, "product": served[u2]["items"][0]["product"], "type": "cart"},
        {"user": u3, "product": "no-such-list-shows-it", "type": "purchase", "value": 9.5},
    ], format="json")
    assert r.status_code == 202 and r.json()["created"] == 2, r.content  # the third names an unknown product
    r = write_client.post("/api/v1/events", {"user": u3, "product": served[u1]["items"][0]["product"],
                                             "type": "purchase", "value": 9.5}, format="json")
    assert r.status_code == 202
    by_id = Attribution.objects.get(interaction__user__external_id=u1)
    assert (by_id.state, by_id.method, by_id.position, by_id.model_version, by_id.arm) == \
        ("attributed", "id", 3, served[u1]["model_version"], served[u1]["experiment"]["arm"])
    assert by_id.impression.recommendation_id == rid
    assert Attribution.objects.filter(state="pending").count() == 2  # waiting for the other processes' lists
    attribute_pending(now=timezone.now() + timedelta(seconds=settle_seconds() + 1))
    window = Attribution.objects.get(interaction__user__external_id=u2)
    latest = Impression.objects.filter(user=u2).order_by("-created_at", "-id").first()
    assert (window.method, window.position, window.impression_id) == ("window", 1, latest.pk)
    if served[u1]["items"][0]["product"] not in [i["product"] for i in served[u3]["items"]]:
        assert Attribution.objects.get(interaction__user__external_id=u3).state == "unattributed"
    bad = write_client.post("/api/v1/events", {"user": u1, "product": shown, "type": "click",
                                               "recommendation_id": ["x"]}, format="json")
    assert bad.status_code == 400 and "0.recommendation_id" in bad.json()["error"]["fields"]

    result = read_client.get(f"/api/v1/experiments/{e.pk}/results").json()
    arm1 = served[u1]["experiment"]["arm"]
    assert result["arms"][arm1]["metrics"]["ctr"]["total"] == 1.0
    assert sum(a["impressions"] for a in result["arms"].values()) == len(users) + 10
    assert result["comparisons"]["variant-1"]["primary"] == "ctr"

    # stop: everyone gets the active version, without an experiment
    assert write_client.post(f"/api/v1/experiments/{e.pk}/stop", {"reason": "done"}, format="json").status_code == 200
    for u in users[:10]:
        body = _recommend(read_client, u)
        assert body["model_version"] == control.pk and "experiment" not in body
    assert write_client.post(f"/api/v1/experiments/{e.pk}/promote", {"arm": "variant-1"},
                             format="json").status_code == 200
    assert active_version().pk == variant.pk
    assert _recommend(read_client, users[0])["model_version"] == variant.pk
    assert write_client.post(f"/api/v1/experiments/{e.pk}/rollback", format="json").status_code == 200
    assert active_version().pk == control.pk
    assert write_client.post(f"/api/v1/experiments/{e.pk}/rollback", format="json").status_code == 409
    audit = list(AuditEntry.objects.filter(entity_uids__contains=f"experiment:{e.pk}").order_by("id")
                 .values_list("action", flat=True)) if connection.vendor == "postgresql" else list(
        AuditEntry.objects.filter(action__startswith="experiment_").order_by("id").values_list("action", flat=True))
    assert audit == ["experiment_start", "experiment_stop", "experiment_promote", "experiment_rollback"]
    assert not any(a.revertible for a in AuditEntry.objects.filter(action__startswith="experiment_"))

    # erasing a user erases the lists they were shown
    assert write_client.delete(f"/api/v1/users/{u1}").status_code == 204
    assert not Impression.objects.filter(user=u1).exists()


@pytest.mark.django_db(transaction=True)
def test_similar_and_search_lists_carry_ids(write_client, two_versions):
    from kms.experiments.impressions import buffer
    from kms.experiments.models import Impression

    control, variant = two_versions
    product = control.n_items and __import__("kms.catalogue.models", fromlist=["Product"]).Product.objects.first()
    body = write_client.get(f"/api/v1/products/{product.external_id}/similar?k=4&user=someone").json()
    assert len(body["recommendation_id"]) == 32 and [i["position"] for i in body["items"]] == list(
        range(1, len(body["items"]) + 1))
    found = write_client.get("/api/v1/search", {"q": product.title.split()[0], "k": 5}).json()
    assert len(found["recommendation_id"]) == 32
    buffer.flush()
    assert set(Impression.objects.values_list("surface", flat=True)) == {"similar", "search"}
    assert Impression.objects.get(surface="similar").user == "someone"


@pytest.mark.django_db
def test_command_and_portal(two_versions, client, django_user_model):
    from django.contrib.auth.models import Group

    from kms.curation.roles import setup_roles
    from kms.experiments.models import Experiment

    control, variant = two_versions
    with pytest.raises(CommandError, match="not a trained model version"):
        call_command("experiment", "start", "bad", "--variant", "999999")
    call_command("experiment", "start", "cmd", "--variant", f"{variant.pk}:2", "--baseline", "0.1")
    e = Experiment.objects.get(name="cmd")
    assert list(e.arms.values_list("name", "version_id", "share")) == [("control", control.pk, 1.0),
                                                                       ("variant-1", variant.pk, 2.0)]
    with pytest.raises(CommandError, match="already running"):
        call_command("experiment", "start", "again", "--variant", str(variant.pk))

    setup_roles()
    for role in ("viewer", "admin"):
        user = django_user_model.objects.create_user(role, password="pw-12345")
        user.groups.add(Group.objects.get(name=role))
    client.login(username="viewer", password="pw-12345")
    page = client.get("/portal/experiments/")
    assert page.status_code == 200 and b"cmd" in page.content and b"Start an experiment" not in page.content
    detail = client.get(f"/portal/experiments/{e.pk}/")
    assert detail.status_code == 200 and b'id="arms"' in detail.content
    assert client.post(f"/portal/experiments/{e.pk}/stop").status_code == 403
    client.login(username="admin", password="pw-12345")
    assert client.post(f"/portal/experiments/{e.pk}/stop", {"reason": "portal"}).status_code == 302
    e.refresh_from_db()
    assert e.state == "stopped"
    r = client.post("/portal/experiments/start", {"name": "from-portal", "variant": [str(variant.pk)],
                                                  "baseline": "0.1"})
    assert r.status_code == 302
    assert Experiment.objects.get(name="from-portal").state == "running"
    call_command("experiment", "stop", str(Experiment.objects.get(name="from-portal").pk))


@pytest.mark.django_db(transaction=True)
def test_buffered_lists_are_written_whole_once_and_not_when_recording_is_off(settings):
    """The flush's plain-SQL insert stores every column as the ORM reads it back (items in order,
    an aware timestamp), a chunk written twice adds nothing, and KMS_RECORD_IMPRESSIONS=0 stores nothing."""
    from kms.experiments import impressions
    from kms.experiments.models import Impression

    impressions.buffer.clear()
    when = timezone.now() - timedelta(minutes=3)
    rows = [(f"{n:032x}", f"u{n}", "recommendations", 7 if n % 2 else None, None, "", [f"p{n}", "p0", "é"], when)
            for n in range(5 * impressions.INSERT_CHUNK + 3)]  # more than one chunk, more than FLUSH_SIZE
    for row in rows:
        impressions.buffer.add(row)
    impressions.buffer.flush()  # the flusher thread may have taken the first 500 (FLUSH_SIZE) itself
    mine = Impression.objects.filter(recommendation_id__in=[r[0] for r in rows])  # not an earlier test's late flush
    assert impressions.buffer.rows == [] and mine.count() == len(rows)
    impressions.insert_rows(rows[:5])  # a retried chunk whose rows had reached the database
    assert mine.count() == len(rows)
    stored = Impression.objects.get(recommendation_id=f"{1:032x}")
    assert (stored.user, stored.surface, stored.model_version, stored.items, stored.created_at) == (
        "u1", "recommendations", 7, ["p1", "p0", "é"], when)
    assert Impression.objects.get(recommendation_id=f"{2:032x}").model_version is None

    settings.KMS_RECORD_IMPRESSIONS = False
    body = impressions.record({"items": [{"product": "a"}, {"product": "b"}]}, "search", "u9", None)
    assert len(body["recommendation_id"]) == 32 and [i["position"] for i in body["items"]] == [1, 2]
    assert impressions.buffer.rows == []


@pytest.mark.django_db(transaction=True)
def test_the_flusher_keeps_its_database_connection_between_flushes(settings, monkeypatch):
    """Each flush of the background thread used to close its connection, so every flush opened a new
    one (on PostgreSQL a new backend process). Two flushes by the thread now use one connection; the
    thread closes it when it retires."""
    import time as _time

    from django.db import connection as conn

    from kms.experiments import impressions

    settings.KMS_IMPRESSIONS_FLUSH_SECONDS = 0.05
    settings.KMS_IMPRESSIONS_QUEUE_URL = ""  # the flusher writes the database itself
    impressions.buffer.clear()
    used, original = [], impressions.insert_rows

    def observed(rows):
        original(rows)
        used.append(conn.connection)  # the thread's own DB-API connection (kept referenced: ids stay distinct)

    monkeypatch.setattr(impressions, "insert_rows", observed)
    when = timezone.now()
    for flush in range(2):
        impressions.buffer.add((f"{flush:031x}f", "u1", "recommendations", None, None, "", ["p1"], when))
        deadline = _time.monotonic() + 10
        while len(used) <= flush and _time.monotonic() < deadline:
            _time.sleep(0.02)
    assert len(used) == 2 and used[0] is not None and used[0] is used[1]
    thread = impressions.buffer.thread
    impressions.buffer.clear()  # retires the thread, which closes its connection
    thread.join(5)
    assert not thread.is_alive()


@pytest.fixture
def queue(settings):
    """The impression queue on the test Redis, empty (and emptied afterwards)."""
    from kms.experiments import impressions

    assert settings.KMS_IMPRESSIONS_QUEUE_URL, "the tests run with Redis: the queue is on by default"
    settings.KMS_IMPRESSIONS_FLUSH_SECONDS = 3600  # the background thread stays out of the way
    client = impressions._queue()
    impressions.buffer.clear()
    with impressions.buffer.flush_lock:  # an earlier test's flush still pushing finishes first
        client.delete(*impressions._keys())
    yield client
    client.delete(*impressions._keys())


def _lists(n, user="u1", when=None, prefix="a"):
    when = when or timezone.now()
    return [(f"{prefix}{k:0{32 - len(prefix)}x}", user, "recommendations", 3, None, "", [f"p{k}", "p0"], when) for k in range(n)]


@pytest.mark.django_db(transaction=True)
def test_with_the_queue_the_web_flush_pushes_and_the_writer_stores_each_list_once(queue, settings):
    """The background flush (attribute=False) only pushes: nothing reaches the database until a
    writer drains, which stores every list once, in order, with its timestamp; the command is that writer."""
    from kms.experiments import impressions
    from kms.experiments.models import Impression

    when = timezone.now() - timedelta(seconds=30)
    rows = _lists(7, when=when) + _lists(3, user="u2", when=when, prefix="b")
    for row in rows[:7]:
        impressions.buffer.add(row)
    impressions.buffer.flush(attribute=False)
    for row in rows[7:]:
        impressions.buffer.add(row)
    impressions.buffer.flush(attribute=False)
    queue_key = impressions._keys()[0]
    # one element per flush (the background thread may have taken a flush of its own in between)
    assert queue.llen(queue_key) >= 2 and Impression.objects.count() == 0
    call_command("write_impressions", "--once")
    assert queue.llen(queue_key) == 0
    stored = {i.recommendation_id: i for i in Impression.objects.all()}
    assert set(stored) == {r[0] for r in rows}
    one = stored[rows[8][0]]
    assert (one.user, one.model_version, one.items, one.created_at) == ("u2", 3, ["p1", "p0"], when)
    assert impressions.drain_queue() == 0  # nothing left; a second drain writes nothing


@pytest.mark.django_db(transaction=True)
def test_an_explicit_flush_and_a_long_queue_reach_the_database_without_a_writer(queue, settings, monkeypatch):
    """No writer running: flush() (feedback, exit) pushes and drains, and a background flush that
    finds more than SELF_DRAIN_BATCHES elements waiting drains the queue itself."""
    from kms.experiments import impressions
    from kms.experiments.models import Impression

    for row in _lists(2):
        impressions.buffer.add(row)
    impressions.buffer.flush()  # explicit: the lists are in the database when it returns
    assert Impression.objects.count() == 2
    monkeypatch.setattr(impressions, "SELF_DRAIN_BATCHES", 3)
    for n in range(4):
        impressions.buffer.add(_lists(1, prefix=f"c{n}")[0])
        impressions.buffer.flush(attribute=False)
    assert Impression.objects.count() == 2 + 4 and queue.llen(impressions._keys()[0]) == 0
    # a row the table refuses (an id longer than the column) is dropped, not left blocking the queue
    impressions.buffer.add(("x" * 40, "u1", "recommendations", 3, None, "", ["p1"], timezone.now()))
    impressions.buffer.add(_lists(1, prefix="ok")[0])
    impressions.buffer.flush()
    assert queue.llen(impressions._keys()[0]) == 0
    assert Impression.objects.filter(recommendation_id__startswith="ok").count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_erased_users_queued_lists_are_never_written(queue, settings):
    """Lists served to a user before their erasure and still queued are dropped by the writer;
    lists served to the same id afterwards are kept."""
    from kms.events.models import ShopUser
    from kms.experiments import impressions
    from kms.experiments.models import Impression

    ShopUser.objects.create(external_id="gone")
    before = timezone.now() - timedelta(seconds=5)
    for row in _lists(3, user="gone", when=before) + _lists(2, user="stays", when=before, prefix="s"):
        impressions.buffer.add(row)
    impressions.buffer.flush(attribute=False)
    ShopUser.objects.get(external_id="gone").delete()  # the erasure's signal
    for row in _lists(1, user="gone", when=timezone.now() + timedelta(seconds=1), prefix="n"):
        impressions.buffer.add(row)
    impressions.buffer.flush(attribute=False)
    assert impressions.drain_queue() == 3
    assert sorted(Impression.objects.values_list("user", flat=True)) == ["gone", "stays", "stays"]
    assert Impression.objects.get(user="gone").recommendation_id.startswith("n")


@pytest.mark.django_db(transaction=True)
def test_without_redis_the_flush_writes_directly(settings):
    from kms.experiments import impressions
    from kms.experiments.models import Impression

    settings.KMS_IMPRESSIONS_QUEUE_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    impressions.buffer.clear()
    for row in _lists(4, prefix="d"):
        impressions.buffer.add(row)
    impressions.buffer.flush(attribute=False)
    assert Impression.objects.filter(recommendation_id__startswith="d").count() == 4
