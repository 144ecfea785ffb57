from django.apps import AppConfig


class RecsConfig(AppConfig):
    name = "kms.recs"
    label = "recs"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from kms.catalogue.models import Product

        from .serving_cache import serving_cache
        from .services import product_rows

        def forget(sender, instance, **kwargs):
            product_rows.forget(instance.external_id)
            serving_cache.changed("catalogue")  # and every other process's copy

        post_save.connect(forget, sender=Product, dispatch_uid="recs-product-rows-save")
        post_delete.connect(forget, sender=Product, dispatch_uid="recs-product-rows-delete")
