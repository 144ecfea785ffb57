from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "kms.api"
    label = "api"
