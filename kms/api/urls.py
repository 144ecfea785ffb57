from django.urls import path, re_path

from kms.experiments import api as experiments

from . import views

urlpatterns = [
    path("ping", views.Ping.as_view(), name="ping"),
    path("products", views.ProductList.as_view(), name="products"),
    path("products/<str:product_id>", views.ProductDetail.as_view(), name="product-detail"),
    path("products/<str:product_id>/similar", views.SimilarProducts.as_view(), name="product-similar"),
    path("popular", views.Popular.as_view(), name="popular"),
    path("search", views.Search.as_view(), name="search"),
    path("users", views.UserList.as_view(), name="users"),
    path("users/<str:user_id>", views.UserDetail.as_view(), name="user-detail"),
    path("users/<str:user_id>/events", views.UserEvents.as_view(), name="user-events"),
    path("users/<str:user_id>/recommendations", views.UserRecommendations.as_view(), name="user-recommendations"),
    path("events", views.EventList.as_view(), name="events"),
    path("graph/entities", views.EntityList.as_view(), name="graph-entities"),
    path("graph/paths", views.GraphPaths.as_view(), name="graph-paths"),
    re_path(r"^graph/nodes/(?P<uid>[^/].*)/neighbours$", views.GraphNeighbours.as_view(), name="graph-neighbours"),
    re_path(r"^graph/nodes/(?P<uid>[^/].*)$", views.GraphNode.as_view(), name="graph-node"),
    path("jobs/ingest", views.IngestionJobs.as_view(), name="jobs-ingest"),
    path("jobs/ingest/<int:job_id>", views.IngestionJobDetail.as_view(), name="jobs-ingest-detail"),
    path("jobs/train", views.TrainingJobs.as_view(), name="jobs-train"),
    path("jobs/train/<int:version_id>", views.TrainingJobDetail.as_view(), name="jobs-train-detail"),
    path("experiments", experiments.ExperimentList.as_view(), name="experiments"),
    path("experiments/<int:experiment_id>", experiments.ExperimentDetail.as_view(), name="experiment-detail"),
    path("experiments/<int:experiment_id>/results", experiments.ExperimentResultsView.as_view(),
         name="experiment-results"),
    path("experiments/<int:experiment_id>/stop", experiments.StopExperiment.as_view(), name="experiment-stop"),
    path("experiments/<int:experiment_id>/promote", experiments.PromoteExperiment.as_view(), name="experiment-promote"),
    path("experiments/<int:experiment_id>/rollback", experiments.RollbackExperiment.as_view(),
         name="experiment-rollback"),
    # [\s\S], not ".": a path with a newline in it must get the JSON 404 too, not Django's HTML page.
    re_path(r"^[\s\S]*$", views.UnknownEndpoint.as_view(), name="unknown-endpoint"),
]
