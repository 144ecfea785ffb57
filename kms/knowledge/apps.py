from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "kms.knowledge"
    label = "knowledge"
