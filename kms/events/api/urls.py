from django.urls import path

from . import views

urlpatterns = [
    path("users", views.UserList.as_view(), name="users"),
    path("users/<str:user_id>", views.UserDetail.as_view(), name="user-detail"),
    path("users/<str:user_id>/events", views.UserEvents.as_view(), name="user-events"),
    path("events", views.EventList.as_view(), name="events"),
]
