from django.apps import AppConfig


class RecsConfig(AppConfig):
    name = "kms.recs"
    label = "recs"
