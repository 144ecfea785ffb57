"""The portal's roles as Django groups: viewer ⊂ curator ⊂ admin."""
from __future__ import annotations

VIEW, CURATE, ADMINISTER = "curation.view_portal", "curation.curate", "curation.administer"

ROLE_PERMISSIONS = {
    "viewer": ["view_portal"],
    "curator": ["view_portal", "curate"],
    "admin": ["view_portal", "curate", "administer"],
}


def setup_roles() -> dict[str, list[str]]:
    """Create (or bring up to date) the three groups; idempotent."""
    from django.contrib.auth.models import Group, Permission
    from django.contrib.auth.management import create_permissions
    from django.apps import apps

    create_permissions(apps.get_app_config("curation"), verbosity=0)
    out = {}
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = list(Permission.objects.filter(content_type__app_label="curation", codename__in=codenames))
        group.permissions.set(perms)
        out[role] = sorted(p.codename for p in perms)
    return out


def setup_roles_after_migrate(sender, **kwargs) -> None:
    setup_roles()
