from django.urls import path

from . import operations, views

app_name = "curation"

urlpatterns = [
    path("", views.home, name="home"),
    path("entities/", views.entity_list, name="entities"),
    path("entities/search.json", views.entity_search_json, name="entity-search"),
    path("entities/new", views.entity_create, name="entity-create"),
    path("entities/<int:pk>/", views.entity_detail, name="entity"),
    path("entities/<int:pk>/rename", views.entity_rename, name="entity-rename"),
    path("entities/<int:pk>/merge", views.entity_merge, name="entity-merge"),
    path("entities/<int:pk>/split", views.entity_split, name="entity-split"),
    path("entities/<int:pk>/delete", views.entity_delete, name="entity-delete"),
    path("graph/neighbours.json", views.graph_json, name="graph-json"),
    path("facts/bulk", views.facts_bulk, name="facts-bulk"),
    path("facts/<int:pk>/edit", views.fact_edit, name="fact-edit"),
    path("attributes/", views.attribute_schemas, name="attributes"),
    path("attributes/save", views.attribute_save, name="attribute-save"),
    path("attributes/<int:pk>/delete", views.attribute_delete, name="attribute-delete"),
    path("review/", views.review, name="review"),
    path("audit/", views.audit, name="audit"),
    path("audit/<int:pk>/revert", views.audit_revert, name="audit-revert"),
    path("ops/jobs/", operations.jobs, name="jobs"),
    path("ops/jobs.json", operations.jobs_json, name="jobs-json"),
    path("ops/jobs/start", operations.jobs_start, name="jobs-start"),
    path("ops/models/", operations.models, name="models"),
    path("ops/graph/", operations.stats, name="stats"),
    path("ops/outbox/deliver", operations.outbox_deliver, name="outbox-deliver"),
]
