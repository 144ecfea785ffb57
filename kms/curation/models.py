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
        # experiment actions (kms.experiments) are undone by their own actions (stop, roll back)
        return (self.action in self.Action.values and self.action != self.Action.REVERT
                and not hasattr(self, "reverted_by"))


class OutboxEntry(models.Model):
    """A graph-store change written in the same transaction as the database edit it mirrors.

    The one way kms changes the graph store outside ingestion's in-transaction write and the
    event sweep: curation edits, product deletion, user erasure, user renames, event erasure.
    Delivery (``kms.curation.services.deliver_outbox``, run by the ``deliver_graph_outbox``
    task after the commit and from beat) applies pending rows in id order and marks them done;
    every operation is idempotent (MERGE on uids, or re-read from the database), so a row
    applied twice is harmless.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        DONE = "done"

    class Op(models.TextChoices):
        UPSERT_ENTITY = "upsert_entity"
        MERGE_NODES = "merge_nodes"
        DELETE_NODE = "delete_node"
        SYNC_PRODUCTS = "sync_products"
        DELETE_PRODUCT = "delete_product"  # node gone; a product re-created under the id is re-synced
        ERASE_USERS = "erase_users"  # nodes gone; users now holding those ids are rebuilt from the database
        DELETE_USER_EVENTS = "delete_user_events"  # INTERACTED edges gone; later events pushed again

    op = models.CharField(max_length=32, choices=Op.choices)
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

    @classmethod
    def add(cls, op: str, **payload) -> "OutboxEntry":
        """Record a graph change; call inside the transaction of the database change it mirrors.
        Every such change (curated facts, entities, deletions, erasures) may change what serving
        shows, so it moves the serving cache's catalogue generation."""
        from kms.recs.serving_cache import serving_cache

        entry = cls.objects.create(op=cls.Op(op), payload=payload)
        serving_cache.changed("catalogue")
        return entry
