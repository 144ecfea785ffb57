from django.apps import AppConfig


class CatalogueConfig(AppConfig):
    name = "kms.catalogue"
    label = "catalogue"
