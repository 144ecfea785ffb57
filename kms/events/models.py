from django.db import models
from kgschema import user_uid


class ShopUser(models.Model):
    """A shop's customer (not a Django login user), known by the shop's own id."""

    external_id = models.CharField(max_length=128, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.external_id

    @property
    def graph_uid(self) -> str:
        return user_uid(self.external_id)


class Interaction(models.Model):
    class Type(models.TextChoices):
        VIEW = "view"
        CLICK = "click"
        CART = "cart"
        PURCHASE = "purchase"
        RATING = "rating"

    event_id = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(ShopUser, on_delete=models.CASCADE, related_name="interactions")
    product = models.ForeignKey("catalogue.Product", on_delete=models.CASCADE, related_name="interactions")
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.VIEW)
    value = models.FloatField(default=1.0)
    timestamp = models.DateTimeField(db_index=True)
    in_graph = models.BooleanField(default=False)

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [models.Index(fields=["user", "timestamp"])]
