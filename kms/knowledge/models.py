from django.conf import settings
from django.db import models


class Status(models.TextChoices):
    AUTO = "auto"
    APPROVED = "approved"
    REJECTED = "rejected"
    # extracted but under its relation's confidence threshold: in the review queue, not in the graph
    CANDIDATE = "candidate"


# Facts that reach the graph store, explanations and the recommender; curated = a person decided.
TRUSTED = (Status.AUTO, Status.APPROVED)
CURATED = (Status.APPROVED, Status.REJECTED)
EXTRACTED = (Status.AUTO, Status.CANDIDATE)  # replaced wholesale when a product is re-extracted


class Entity(models.Model):
    """A node of the knowledge graph other than products and users (brand, category, material, …)."""

    # Unique and indexed through Meta, not unique=/db_index=: on PostgreSQL those add a LIKE-pattern
    # index per column that no query here uses and every entity ingestion creates pays for.
    uid = models.CharField(max_length=512)
    type = models.CharField(max_length=32)
    name = models.CharField(max_length=255)
    aliases = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.AUTO)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged",
                                    db_index=False)  # partial index in Meta: NULL for all but merged entities
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["type", "name"]
        verbose_name_plural = "entities"
        constraints = [models.UniqueConstraint(fields=["uid"], name="knowledge_entity_uid_unique")]
        indexes = [models.Index(fields=["type"], name="knowledge_entity_type"),
                   models.Index(fields=["name"], name="knowledge_entity_name"),
                   models.Index(fields=["merged_into"], name="knowledge_entity_merged",
                                condition=models.Q(merged_into__isnull=False))]

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
    curated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   db_index=False)  # partial index in Meta: NULL for every extracted fact
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["product_id", "relation", "id"]
        # Every index here is paid for by each ingested fact, so only those queries use, and
        # plain ones (db_index on PostgreSQL adds a LIKE-pattern index nobody queries with).
        # created_at: serving looks up facts newer than the active model (cold-start products);
        # status and curated_by are looked up for their rare values only (curated facts), so their
        # indexes leave out the automatic facts that are nearly all rows.
        indexes = [models.Index(fields=["product", "status"]), models.Index(fields=["created_at"]),
                   models.Index(fields=["relation"], name="knowledge_fact_relation"),
                   models.Index(fields=["status"], name="knowledge_fact_curated",
                                condition=~models.Q(status="auto")),
                   models.Index(fields=["curated_by"], name="knowledge_fact_curator",
                                condition=models.Q(curated_by__isnull=False))]

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


class AttributeDefinition(models.Model):
    """One attribute of a category's schema (``nlp.attributes.AttributeSchema``), curated in the portal.

    ``values``: known values as written in titles (the extractor's dictionary); ``patterns``:
    value shapes with ``<N>`` for a number ("<N> Ounce", "Pack of <N>").
    """

    category = models.CharField(max_length=255)
    name = models.CharField(max_length=128)
    values = models.JSONField(default=list, blank=True)
    patterns = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "name"]
        constraints = [models.UniqueConstraint(fields=["category", "name"],
                                               name="knowledge_attribute_category_name_unique")]

    def __str__(self) -> str:
        return f"{self.category}: {self.name}"
