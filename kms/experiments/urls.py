from django.urls import path

from . import portal

app_name = "experiments"

urlpatterns = [
    path("", portal.experiment_list, name="list"),
    path("start", portal.experiment_start, name="start"),
    path("<int:pk>/", portal.experiment_detail, name="detail"),
    path("<int:pk>/stop", portal.experiment_act, {"action": "stop"}, name="stop"),
    path("<int:pk>/promote", portal.experiment_act, {"action": "promote"}, name="promote"),
    path("<int:pk>/rollback", portal.experiment_act, {"action": "rollback"}, name="rollback"),
]
