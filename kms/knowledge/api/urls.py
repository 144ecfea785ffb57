from django.urls import path, re_path

from . import views

urlpatterns = [
    path("graph/entities", views.EntityList.as_view(), name="graph-entities"),
    path("graph/paths", views.GraphPaths.as_view(), name="graph-paths"),
    # neighbours before the node: the node's pattern would match ".../neighbours" too
    re_path(r"^graph/nodes/(?P<uid>[^/].*)/neighbours$", views.GraphNeighbours.as_view(), name="graph-neighbours"),
    re_path(r"^graph/nodes/(?P<uid>[^/].*)$", views.GraphNode.as_view(), name="graph-node"),
    path("jobs/ingest", views.IngestionJobs.as_view(), name="jobs-ingest"),
    path("jobs/ingest/<int:job_id>", views.IngestionJobDetail.as_view(), name="jobs-ingest-detail"),
]
