from django.conf import settings
from django.db import models


class Status(models.TextChoices):
    AUTO = "auto"
    APPROVED = "approved"
    REJECTED = "rejected"


class Entity(models.Model):
    """A node of the knowledge graph other than products and users (brand, category, material, …)."""

    uid = models.CharField(max_length=512, unique=True)
    type = models.CharField(max_length=32, db_index=True)
    name = models.CharField(max_length=255, db_index=True)
    aliases = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.AUTO)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["type", "name"]
        verbose_name_plural = "entities"

    def __str__(self) -> str:
        return f"{self.type}:{self.name}"


class Fact(models.Model):
    """One extracted (or curated) statement about a product, with its provenance."""

    # no index of its own: (product, status) below serves lookups by product
    product = models.ForeignKey("catalogue.Product", on_delete=models.CASCADE, related_name="facts", db_index=False)
    relation = models.CharField(max_length=32)
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="facts")
    value = models.CharField(max_length=64, blank=True, default="")
    unit = models.CharField(max_length=32, blank=True, default="")
    field = models.CharField(max_length=32, blank=True, default="")
    start = models.IntegerField(null=True, blank=True)
    end = models.IntegerField(null=True, blank=True)
    text = models.TextField(blank=True, default="")
    extractor = models.CharField(max_length=64, default="")
    extractor_version = models.CharField(max_length=32, default="")
    confidence = models.FloatField(default=1.0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.AUTO)
    curated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["product_id", "relation", "id"]
        # created_at: serving looks up facts newer than the active model (cold-start products).
        # relation and status get plain indexes in Meta, not db_index: on PostgreSQL db_index adds a
        # second (LIKE pattern) index that no query here uses and every ingested fact pays for.
        indexes = [models.Index(fields=["product", "status"]), models.Index(fields=["created_at"]),
                   models.Index(fields=["relation"], name="knowledge_fact_relation"),
                   models.Index(fields=["status"], name="knowledge_fact_status")]

    def __str__(self) -> str:
        return f"{self.product_id} {self.relation} {self.entity_id} ({self.status})"


class IngestionJob(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    kind = models.CharField(max_length=32, default="ingest")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    product_ids = models.JSONField(default=list, blank=True)
    total = models.IntegerField(default=0)
    done = models.IntegerField(default=0)
    skipped = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # [{"product": external id, "error": text}]
    message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    @property
    def rate(self) -> float:
        """Products per second so far."""
        if not self.started_at:
            return 0.0
        from django.utils import timezone

        end = self.finished_at or timezone.now()
        seconds = max((end - self.started_at).total_seconds(), 1e-6)
        return (self.done + self.skipped + self.failed) / seconds
