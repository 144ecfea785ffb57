from django.urls import path

from . import views

urlpatterns = [
    path("products", views.ProductList.as_view(), name="products"),
    path("products/<str:product_id>", views.ProductDetail.as_view(), name="product-detail"),
    path("products/<str:product_id>/similar", views.SimilarProducts.as_view(), name="product-similar"),
    path("events", views.EventList.as_view(), name="events"),
    path("users/<str:user_id>/recommendations", views.UserRecommendations.as_view(), name="user-recommendations"),
    path("popular", views.Popular.as_view(), name="popular"),
    path("jobs/ingest", views.IngestionJobs.as_view(), name="jobs-ingest"),
    path("jobs/ingest/<int:job_id>", views.IngestionJobDetail.as_view(), name="jobs-ingest-detail"),
]
