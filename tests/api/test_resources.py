"""Every resource gets the generic suites of base.py."""
import pytest

from kms.catalogue.models import Product
from kms.events.models import Interaction, ShopUser

from .base import CreateTests, CRUDTests, ListTests, RetrieveTests


@pytest.fixture(autouse=True)
def _graph(kms_graph):
    """Deletes and event writes reach the graph store: use the test server, emptied."""
    return kms_graph



def _tasks(callbacks) -> list:
    """On-commit callbacks that send work (the serving cache's counter bumps left out)."""
    from kms.recs.serving_cache import AfterCommitBump

    return [c for c in callbacks if not isinstance(c, AfterCommitBump)]

class TestProducts(CRUDTests):
    model = Product
    list_url = "/api/v1/products"
    detail_url = "/api/v1/products/{id}"
    brief_fields = ["external_id", "title", "brand", "category_path"]
    create_data = [
        {"external_id": "p-new-1", "title": "Stanley TRA708T 1/2-Inch Staples", "brand": "Stanley",
         "category_path": ["Industrial & Scientific", "Fasteners", "Staples"]},
        {"external_id": "p-new-2", "title": "Arrow T50 Staple Gun", "brand": "Arrow", "categories": "A,B"},
    ]
    create_status = 202
    invalid_create = ({"external_id": "x", "title": 42}, "title")
    update_data = {"title": "Renamed title"}

    def expected_fields(self, data):
        out = {"description": "", "brand": "", "category_path": [], "attributes": {}} | data
        if "categories" in out:  # the comma-separated form of category_path
            out["category_path"] = out.pop("categories").split(",")
        return out

    def make_objects(self, n):
        from kms.catalogue.services import upsert_products

        ids = [f"p-{self.__class__.__name__}-{i}" for i in range(n)]
        upsert_products([{"external_id": i, "title": f"Product {i}", "brand": "Acme"} for i in ids])
        return ids

    def check_updated(self, obj_id, body):
        assert body["product"]["title"] == "Renamed title"
        assert body["product"]["brand"] == "Acme"  # PATCH keeps the other fields

    def test_bulk_json_array(self, write_client):
        body = [{"external_id": f"b{i}", "title": f"T{i}"} for i in range(5)] + [{"external_id": "bad"}]
        response = write_client.post(self.list_url, body, format="json")
        assert response.status_code == 202
        out = response.json()
        assert out["created"] == 5 and out["errors"][0]["errors"] == {"title": "is required"}

    def test_bulk_error_names_the_id_as_a_string(self, write_client):
        """A record refused with a numeric id reports it as the string clean_product uses (the schema's
        RecordError.external_id is string or null; the fuzzer found an int there, 2026-12-02)."""
        body = [{"external_id": "n-ok", "title": "T"}, {"external_id": 401}, {"external_id": True}]
        response = write_client.post(self.list_url, body, format="json")
        assert response.status_code == 202, response.content
        assert [(e["index"], e["external_id"]) for e in response.json()["errors"]] == [(1, "401"), (2, None)]

    def test_bulk_jsonl(self, write_client):
        lines = "\n".join(f'{{"external_id": "j{i}", "title": "T{i}"}}' for i in range(4))
        response = write_client.post(self.list_url, lines, content_type="application/x-ndjson")
        assert response.status_code == 202, response.content
        assert response.json()["created"] == 4

    def test_bulk_jsonl_bad_line_named(self, write_client):
        response = write_client.post(self.list_url, '{"external_id": "a", "title": "t"}\n{oops',
                                     content_type="application/x-ndjson")
        assert response.status_code == 400
        assert "line 2" in response.json()["error"]["fields"]["body"][0]

    def test_filters(self, read_client):
        from kms.catalogue.services import upsert_products

        upsert_products([
            {"external_id": "f1", "title": "a", "brand": "Stanley", "category_path": ["Tools", "Staples"]},
            {"external_id": "f2", "title": "b", "brand": "Arrow", "category_path": ["Tools", "Staples"]},
            {"external_id": "f3", "title": "c", "brand": "Stanley", "category_path": ["Tools", "Files"]},
        ])
        ids = lambda q: [r["external_id"] for r in read_client.get(f"{self.list_url}?{q}").json()["results"]]
        assert ids("brand=stanley") == ["f1", "f3"]
        assert ids("category=Staples") == ["f1", "f2"]
        assert ids("brand=Stanley&category=Files") == ["f3"]

    def test_put_creates_and_replaces(self, write_client):
        url = self.url_for("put-1")
        assert write_client.put(url, {"title": "One"}, format="json").status_code == 200
        response = write_client.put(url, {"title": "Two"}, format="json")
        assert response.json()["product"]["title"] == "Two"
        assert response.json()["product"]["brand"] == ""  # PUT replaces

    def test_put_id_mismatch_named(self, write_client):
        response = write_client.put(self.url_for("a"), {"external_id": "b", "title": "x"}, format="json")
        assert response.status_code == 400 and "external_id" in response.json()["error"]["fields"]

    def test_create_starts_ingestion_job(self, write_client, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = write_client.post(self.list_url, self.create_data[0], format="json")
        assert response.json()["ingestion_job"] is not None
        assert len(_tasks(callbacks)) == 1  # run_ingestion.delay(job) after commit


class TestUsers(CRUDTests):
    model = ShopUser
    list_url = "/api/v1/users"
    detail_url = "/api/v1/users/{id}"
    brief_fields = ["external_id", "created_at"]
    create_data = [{"external_id": "u-new-1"}, {"external_id": "u-new-2"}]
    invalid_create = ({"external_id": ""}, "external_id")
    update_data = {"external_id": "u-renamed"}

    def make_objects(self, n):
        from kms.events.models import ShopUser

        ids = [f"u-{i}" for i in range(n)]
        ShopUser.objects.bulk_create([ShopUser(external_id=i) for i in ids])
        return ids

    def check_updated(self, obj_id, body):
        from kms.events.models import ShopUser

        assert body["external_id"] == "u-renamed"
        assert not ShopUser.objects.filter(external_id=obj_id).exists()

    def test_create_duplicate_is_conflict(self, write_client):
        self.make_objects(1)
        response = write_client.post(self.list_url, {"external_id": "u-0"}, format="json")
        assert response.status_code == 409 and "external_id" in response.json()["error"]["fields"]

    def test_delete_user_events(self, write_client, kms_graph, django_capture_on_commit_callbacks):
        from kms.catalogue.services import upsert_products

        upsert_products([{"external_id": "p1", "title": "t"}])
        events = [{"user": "u-9", "product": "p1", "type": "view", "event_id": f"e{i}"} for i in range(3)]
        assert write_client.post("/api/v1/events", events, format="json").json()["created"] == 3
        assert write_client.get(self.url_for("u-9")).json()["events"] == 3
        assert kms_graph.count_relationships("INTERACTED") == 1
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = write_client.delete(self.url_for("u-9") + "/events")
        assert response.status_code == 200 and response.json() == {"deleted": 3}
        assert len(_tasks(callbacks)) == 1  # the outbox delivery task, sent after the commit
        assert write_client.get(self.url_for("u-9")).json()["events"] == 0
        assert kms_graph.count_relationships("INTERACTED") == 0
        assert kms_graph.node("user:u-9") is not None  # the user stays
        assert write_client.delete(self.url_for("nobody") + "/events").status_code == 404


class TestEvents(CreateTests):
    list_url = "/api/v1/events"
    create_status = 202
    create_data = [{"user": "u1", "product": "p1", "type": "purchase", "event_id": "ev-1"}]
    invalid_create = ({"user": "u1", "product": "p1", "type": "teleport"}, "type")

    @pytest.fixture(autouse=True)
    def _product(self, db):
        from kms.catalogue.services import upsert_products

        upsert_products([{"external_id": "p1", "title": "t"}])

    def test_create(self, write_client):
        response = write_client.post(self.list_url, self.create_data, format="json")
        assert response.status_code == 202 and response.json()["created"] == 1
        stored = Interaction.objects.select_related("user", "product").get()
        sent = self.create_data[0]
        assert (stored.user.external_id, stored.product.external_id, stored.type, stored.event_id, stored.value) \
            == (sent["user"], sent["product"], sent["type"], sent["event_id"], 1.0)
        again = write_client.post(self.list_url, self.create_data, format="json")
        assert again.json() == {"created": 0, "duplicates": 1, "errors": []}

    def test_event_id_limit_is_one_and_never_truncates(self, write_client):
        """Two ids sharing their first 64 characters are two events or an error, never one event."""
        from kms.events.models import Interaction

        prefix = "x" * 64
        response = write_client.post(self.list_url, [
            {"user": "u1", "product": "p1", "event_id": prefix},
            {"user": "u1", "product": "p1", "event_id": prefix + "-second"},
        ], format="json")
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["created"] == 1 and body["duplicates"] == 0
        assert body["errors"] == [{"index": 1, "errors": {"event_id": "must be a string id, ≤64 characters"}}]
        assert list(Interaction.objects.values_list("event_id", flat=True)) == [prefix]
        alone = write_client.post(self.list_url, {"user": "u1", "product": "p1", "event_id": prefix + "-third"},
                                  format="json")
        assert alone.status_code == 400 and "0.event_id" in alone.json()["error"]["fields"]
        assert Interaction.objects.count() == 1

    def test_jsonl_events(self, write_client):
        lines = "\n".join(f'{{"user": "u{i}", "product": "p1", "event_id": "j{i}"}}' for i in range(3))
        response = write_client.post(self.list_url, lines, content_type="application/x-ndjson")
        assert response.json()["created"] == 3


class TestIngestionJobs(ListTests, RetrieveTests):
    list_url = "/api/v1/jobs/ingest"
    detail_url = "/api/v1/jobs/ingest/{id}"
    brief_fields = ["id", "kind", "state", "total", "done", "failed"]
    id_field = "id"

    def make_objects(self, n):
        from kms.knowledge.models import IngestionJob

        return [IngestionJob.objects.create().pk for _ in range(n)]

    def test_retrieve_unknown_is_404_naming_the_id(self, read_client):
        response = read_client.get(self.url_for(999999))
        assert response.status_code == 404 and "job_id" in response.json()["error"]["fields"]

    def test_start_unknown_products_named(self, write_client):
        response = write_client.post(self.list_url, {"products": ["nope"]}, format="json")
        assert response.status_code == 400 and "products" in response.json()["error"]["fields"]


class TestTrainingJobs(ListTests, RetrieveTests):
    list_url = "/api/v1/jobs/train"
    detail_url = "/api/v1/jobs/train/{id}"
    brief_fields = ["id", "state", "metrics", "params"]
    id_field = "id"

    def make_objects(self, n):
        from kms.recs.models import ModelVersion

        return [ModelVersion.objects.create(state="ready").pk for _ in range(n)]

    def test_retrieve_unknown_is_404_naming_the_id(self, read_client):
        assert read_client.get(self.url_for(999999)).status_code == 404

    def test_bad_params_named(self, write_client):
        response = write_client.post(self.list_url, {"params": {"epochs": [1, 2]}}, format="json")
        assert response.status_code == 400 and "params" in response.json()["error"]["fields"]

    def test_post_queues_a_version_and_sends_it_after_commit(self, write_client, django_capture_on_commit_callbacks):
        from kms.recs.models import ModelVersion

        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = write_client.post(self.list_url, {"params": {"epochs": 3}}, format="json")
        assert response.status_code == 202, response.content
        body = response.json()
        version = ModelVersion.objects.get(pk=body["version"])
        assert (version.state, version.params) == ("queued", {"preset": "best", "epochs": 3})  # the default preset
        assert body["state"] == "pending" and body["task_id"] and "result" not in body
        assert len(callbacks) == 1  # train.apply_async(version_id=…) once the version is committed
        assert write_client.get(self.url_for(body["version"])).json()["state"] == "queued"

    def test_train_refused_for_read_key(self, read_client):
        assert read_client.post(self.list_url, {}, format="json").status_code == 403
