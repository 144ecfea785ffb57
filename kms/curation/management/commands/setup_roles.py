from django.core.management.base import BaseCommand

from kms.curation.roles import setup_roles


class Command(BaseCommand):
    help = "Create the portal's viewer, curator and admin groups with their permissions."

    def handle(self, *args, **options):
        for role, perms in setup_roles().items():
            self.stdout.write(f"{role}: {', '.join(perms)}")
