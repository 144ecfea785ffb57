"""Write actions the API needs that the domain apps do not offer yet (candidates to move there):
deleting a product, renaming and deleting a shop user — database first, then the graph store."""
from __future__ import annotations

import logging

from django.db import transaction

from kms.catalogue.models import Product
from kms.events.models import ShopUser
from kms.events.services import delete_user_events

log = logging.getLogger(__name__)


def _graph_write(query: str, **params) -> bool:
    """Best effort: the database is the source of truth; a rebuild of the graph repairs a miss."""
    try:
        from kms.graphstore import get_graph_store

        get_graph_store().write(query, **params)
        return True
    except Exception as exc:
        log.warning("graph store write failed (%s): %s", query.split()[0], exc)
        return False


def delete_product(product: Product) -> None:
    uid = product.graph_uid
    with transaction.atomic():
        product.delete()  # facts and interactions cascade
    _graph_write("MATCH (n:Product {uid: $uid}) DETACH DELETE n", uid=uid)


def rename_user(user: ShopUser, external_id: str) -> ShopUser:
    old = user.graph_uid
    user.external_id = external_id
    user.save(update_fields=["external_id"])
    _graph_write("MATCH (u:User {uid: $old}) SET u.uid = $new, u.external_id = $ext",
                 old=old, new=user.graph_uid, ext=external_id)
    return user


def delete_user(user: ShopUser) -> int:
    """Erase a shop user: events (database and graph) and the user node."""
    n = delete_user_events(user.external_id)
    uid = user.graph_uid
    user.delete()
    _graph_write("MATCH (u:User {uid: $uid}) DETACH DELETE u", uid=uid)
    return n
