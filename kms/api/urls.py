"""/api/v1/: each app's ``api/urls.py`` (NetBox-style), the ping, and the JSON 404 for the rest.
The apps' names are global (no namespaces), so ``reverse("products")`` is what it always was."""
from django.urls import include, path, re_path

from . import views

urlpatterns = [
    path("ping", views.Ping.as_view(), name="ping"),
    # The hot read paths first: Django tries the patterns in order, a few microseconds each. No
    # two apps' patterns match the same path, so the order changes nothing else.
    path("", include("kms.recs.api.urls")),
    path("", include("kms.search.api.urls")),
    path("", include("kms.catalogue.api.urls")),
    path("", include("kms.events.api.urls")),
    path("", include("kms.knowledge.api.urls")),
    path("", include("kms.experiments.api.urls")),
    # [\s\S], not ".": a path with a newline in it must get the JSON 404 too, not Django's HTML page.
    re_path(r"^[\s\S]*$", views.UnknownEndpoint.as_view(), name="unknown-endpoint"),
]
