from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from kms.api import health

handler500 = "kms.api.errors.server_error"  # API paths answer a 500 as JSON, like every other error

urlpatterns = [
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("api/v1/", include("kms.api.urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
    path("portal/experiments/", include("kms.experiments.urls")),
    path("portal/", include("kms.curation.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
]
