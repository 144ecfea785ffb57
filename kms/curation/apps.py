from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CurationConfig(AppConfig):
    name = "kms.curation"
    label = "curation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import roles

        # Groups need the permissions, which Django creates after migrating: do it post_migrate.
        post_migrate.connect(roles.setup_roles_after_migrate, sender=self)
