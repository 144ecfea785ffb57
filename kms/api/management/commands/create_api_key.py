from django.core.management.base import BaseCommand, CommandError

from kms.api.models import ApiKey


class Command(BaseCommand):
    help = "Issue an API key for a shop client. The secret is printed once; only its SHA-256 is stored."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--scope", choices=[s.value for s in ApiKey.Scope], default=ApiKey.Scope.READ)

    def handle(self, *args, name, scope, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("NAME must be 1–100 characters")
        key, secret = ApiKey.issue(name, scope)
        self.stderr.write(f"key {key.pk} '{key.name}' ({key.scope}); store the secret now, it is not shown again:")
        self.stdout.write(secret)
