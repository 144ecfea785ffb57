import hashlib
import secrets

from django.db import models


class ApiKey(models.Model):
    """A shop client's key. Only a SHA-256 of the secret is stored; the secret is shown once."""

    class Scope(models.TextChoices):
        READ = "read"
        WRITE = "write"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)
    hashed = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    revoked = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.scope})"

    @staticmethod
    def digest(secret: str) -> str:
        return hashlib.sha256(secret.encode("utf-8")).hexdigest()

    @classmethod
    def issue(cls, name: str, scope: str = "read") -> tuple["ApiKey", str]:
        secret = "kms_" + secrets.token_urlsafe(32)
        key = cls.objects.create(name=name, prefix=secret[:12], hashed=cls.digest(secret), scope=scope)
        return key, secret

    @property
    def can_write(self) -> bool:
        return self.scope == self.Scope.WRITE and not self.revoked
