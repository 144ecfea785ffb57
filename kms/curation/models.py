from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """One curation change: who did what, when, why, and the state before and after (JSON)."""

    class Action(models.TextChoices):
        FACT_STATUS = "fact_status"
        FACT_EDIT = "fact_edit"
        ENTITY_CREATE = "entity_create"
        ENTITY_RENAME = "entity_rename"
        ENTITY_MERGE = "entity_merge"
        ENTITY_SPLIT = "entity_split"
        ENTITY_DELETE = "entity_delete"
        REVERT = "revert"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="curation_audit")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    summary = models.CharField(max_length=300, blank=True, default="")
    entity_uids = models.JSONField(default=list, blank=True)  # entities touched, for the entity page's history
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True, default="")
    revert_of = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="reverted_by")

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "audit entries"
        permissions = [
            ("view_portal", "Can view the curation portal"),
            ("curate", "Can curate facts and entities"),
            ("administer", "Can delete entities and run operations"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.summary}"

    @property
    def revertible(self) -> bool:
        return self.action != self.Action.REVERT and not hasattr(self, "reverted_by")


class OutboxEntry(models.Model):
    """A graph-store change written in the same transaction as the database edit it mirrors.

    Delivery applies pending rows in id order and marks them done; every operation is
    idempotent (MERGE on uids, or re-read from the database), so a row applied twice is harmless.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        DONE = "done"

    op = models.CharField(max_length=32)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.op} ({self.state})"
