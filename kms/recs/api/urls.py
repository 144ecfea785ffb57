from django.urls import path

from . import views

urlpatterns = [
    path("users/<str:user_id>/recommendations", views.UserRecommendations.as_view(), name="user-recommendations"),
    path("products/<str:product_id>/similar", views.SimilarProducts.as_view(), name="product-similar"),
    path("popular", views.Popular.as_view(), name="popular"),
    path("jobs/train", views.TrainingJobs.as_view(), name="jobs-train"),
    path("jobs/train/<int:version_id>", views.TrainingJobDetail.as_view(), name="jobs-train-detail"),
]
