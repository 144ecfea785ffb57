from django.urls import path

from . import views

urlpatterns = [
    path("experiments", views.ExperimentList.as_view(), name="experiments"),
    path("experiments/<int:experiment_id>", views.ExperimentDetail.as_view(), name="experiment-detail"),
    path("experiments/<int:experiment_id>/results", views.ExperimentResultsView.as_view(),
         name="experiment-results"),
    path("experiments/<int:experiment_id>/stop", views.StopExperiment.as_view(), name="experiment-stop"),
    path("experiments/<int:experiment_id>/promote", views.PromoteExperiment.as_view(), name="experiment-promote"),
    path("experiments/<int:experiment_id>/rollback", views.RollbackExperiment.as_view(),
         name="experiment-rollback"),
]
