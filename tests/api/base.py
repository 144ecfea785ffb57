"""Generic API test suites (after NetBox's utilities/testing/api.py).

A resource test declares its URLs, a factory for existing objects and the bodies to create and
update with; the mixins turn that into list/retrieve/create/update/delete tests, each also
checking the error shape and the scopes (anonymous and read keys cannot write).
"""
from __future__ import annotations

import pytest

from .conftest import error_fields


@pytest.mark.django_db
class APIResourceTest:
    list_url: str = ""
    detail_url: str = ""            # with "{id}"
    brief_fields: list[str] = []     # keys every representation has
    id_field = "external_id"

    def make_objects(self, n: int) -> list[str]:
        """Create n objects directly (not through the API); return their ids."""
        raise NotImplementedError

    def url_for(self, obj_id: str) -> str:
        return self.detail_url.format(id=obj_id)


class ListTests(APIResourceTest):
    def test_list(self, read_client):
        ids = self.make_objects(3)
        response = read_client.get(self.list_url)
        assert response.status_code == 200, response.content
        body = response.json()
        results = body["results"] if isinstance(body, dict) and "results" in body else body
        got = {r[self.id_field] for r in results}
        assert set(ids) <= got
        for row in results:
            assert set(self.brief_fields) <= set(row)


class CursorPaginationTests(APIResourceTest):
    def test_list_cursor_pagination(self, read_client):
        ids = self.make_objects(3)
        seen, url = [], f"{self.list_url}?page_size=2"
        while url:
            body = read_client.get(url).json()
            seen += [r[self.id_field] for r in body["results"]]
            url = body["next"]
        assert [i for i in seen if i in ids] == ids

    def test_bad_cursor_names_field(self, read_client):
        response = read_client.get(f"{self.list_url}?cursor=not-a-cursor")
        assert response.status_code == 400
        assert "cursor" in error_fields(response)


class RetrieveTests(APIResourceTest):
    def test_retrieve(self, read_client):
        obj_id = self.make_objects(1)[0]
        response = read_client.get(self.url_for(obj_id))
        assert response.status_code == 200, response.content
        assert response.json()[self.id_field] == obj_id
        assert set(self.brief_fields) <= set(response.json())

    def test_retrieve_unknown_is_404_naming_the_id(self, read_client):
        response = read_client.get(self.url_for("no-such-id"))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert error_fields(response)


class CreateTests(APIResourceTest):
    model = None                     # the Django model a create stores
    create_data: list[dict] = []
    create_status = 201
    invalid_create: tuple[dict, str] = ({}, "")  # a body and the field it must be blamed on

    def created_ids(self) -> list[str]:
        return [d[self.id_field] for d in self.create_data]

    def expected_fields(self, data: dict) -> dict:
        """The model fields a create body must end up as (override where the API renames)."""
        return data

    def assertInstanceEqual(self, instance, data: dict) -> None:
        """NetBox's check: every field of the request is what the database holds."""
        expected = self.expected_fields(data)
        stored = {name: getattr(instance, name) for name in expected}
        assert stored == expected, f"{type(instance).__name__} stored {stored}, sent {expected}"

    def test_create(self, write_client):
        before = self.model.objects.count()
        for data in self.create_data:
            response = write_client.post(self.list_url, data, format="json")
            assert response.status_code == self.create_status, response.content
        assert self.model.objects.count() == before + len(self.create_data)
        for data in self.create_data:
            self.assertInstanceEqual(self.model.objects.get(**{self.id_field: data[self.id_field]}), data)
        for obj_id in self.created_ids():
            assert write_client.get(self.url_for(obj_id)).status_code == 200

    def test_create_invalid_names_field(self, write_client):
        body, field = self.invalid_create
        response = write_client.post(self.list_url, body, format="json")
        assert response.status_code == 400, response.content
        assert any(field in name for name in error_fields(response)), response.json()

    def test_create_anonymous_refused(self, anon_client):
        response = anon_client.post(self.list_url, self.create_data[0], format="json")
        assert response.status_code in (401, 403)
        assert error_fields(response) == {}

    def test_create_read_key_refused(self, read_client):
        response = read_client.post(self.list_url, self.create_data[0], format="json")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"


class UpdateTests(APIResourceTest):
    update_data: dict = {}
    update_status = 200

    def check_updated(self, obj_id: str, body: dict) -> None:
        raise NotImplementedError

    def test_update(self, write_client):
        obj_id = self.make_objects(1)[0]
        response = write_client.patch(self.url_for(obj_id), self.update_data, format="json")
        assert response.status_code == self.update_status, response.content
        self.check_updated(obj_id, response.json())

    def test_update_read_key_refused(self, read_client):
        obj_id = self.make_objects(1)[0]
        assert read_client.patch(self.url_for(obj_id), self.update_data, format="json").status_code == 403

    def test_update_unknown_is_404(self, write_client):
        response = write_client.patch(self.url_for("no-such-id"), self.update_data, format="json")
        assert response.status_code == 404


class DeleteTests(APIResourceTest):
    def test_delete(self, write_client):
        obj_id = self.make_objects(1)[0]
        assert write_client.delete(self.url_for(obj_id)).status_code == 204
        assert write_client.get(self.url_for(obj_id)).status_code == 404
        assert write_client.delete(self.url_for(obj_id)).status_code == 404

    def test_delete_anonymous_refused(self, anon_client):
        obj_id = self.make_objects(1)[0]
        assert anon_client.delete(self.url_for(obj_id)).status_code in (401, 403)


class CRUDTests(ListTests, CursorPaginationTests, RetrieveTests, CreateTests, UpdateTests, DeleteTests):
    pass
