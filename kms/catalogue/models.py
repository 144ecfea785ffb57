import hashlib
import json

from django.db import models
from kgschema import product_uid


def content_hash(title: str, description: str, brand: str, category_path: list, attributes: dict) -> str:
    """Stable hash of everything extraction reads: unchanged hash means nothing to re-extract."""
    payload = json.dumps([title, description, brand, list(category_path or []), attributes or {}],
                         sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class Product(models.Model):
    external_id = models.CharField(max_length=128, unique=True)
    title = models.TextField()
    description = models.TextField(blank=True, default="")
    brand = models.CharField(max_length=255, blank=True, default="")
    category_path = models.JSONField(default=list, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64, db_index=True)
    extracted_hash = models.CharField(max_length=64, blank=True, default="")
    ingest_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.external_id}: {self.title[:60]}"

    @property
    def graph_uid(self) -> str:
        return product_uid(self.external_id)

    def compute_hash(self) -> str:
        return content_hash(self.title, self.description, self.brand, self.category_path, self.attributes)

    def save(self, *args, **kwargs):
        self.content_hash = self.compute_hash()
        super().save(*args, **kwargs)
