"""API-key authentication (read/write scopes), permissions and per-key throttling."""
import threading
import time
from collections import deque

from django.conf import settings
from rest_framework import authentication, exceptions, permissions, throttling

from .models import ApiKey


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Api-Key <secret>`` or ``X-API-Key: <secret>``."""

    keyword = "Api-Key"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        secret = None
        if header.startswith(self.keyword + " "):
            secret = header[len(self.keyword) + 1:].strip()
        elif request.META.get("HTTP_X_API_KEY"):
            secret = request.META["HTTP_X_API_KEY"].strip()
        if not secret:
            return None
        key = _key_for(ApiKey.digest(secret))
        if key is None:
            raise exceptions.AuthenticationFailed("invalid or revoked API key")
        return (ApiClient(key), key)

    def authenticate_header(self, request):
        return self.keyword


KEY_CACHE_SECONDS = 10.0  # a revoked key stops working within this long
_key_cache: dict[str, tuple[float, ApiKey | None]] = {}
_key_cache_lock = threading.Lock()


def _key_for(digest: str) -> ApiKey | None:
    """The key with this digest; cached briefly so a key costs no query on most requests."""
    now = time.monotonic()
    hit = _key_cache.get(digest)
    if hit is not None and now - hit[0] < KEY_CACHE_SECONDS:
        return hit[1]
    key = ApiKey.objects.filter(hashed=digest, revoked=False).first()
    with _key_cache_lock:
        if len(_key_cache) > 10_000:  # unknown secrets must not grow it without bound
            _key_cache.clear()
        _key_cache[digest] = (now, key)
    return key


def clear_key_cache() -> None:
    with _key_cache_lock:
        _key_cache.clear()


class ApiClient:
    """The authenticated principal of an API-key request."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, key: ApiKey):
        self.key = key
        self.pk = f"key-{key.pk}"

    def __str__(self) -> str:
        return f"api-key:{self.key.name}"


def can_write(request) -> bool:
    if isinstance(request.auth, ApiKey):
        return request.auth.can_write
    user = request.user
    return bool(user and user.is_authenticated and user.is_staff)


def reads_customer_data(request, view) -> bool:
    """Whether this read shows data about the shop's customers (a view's ``customer_data``:
    True, or a method of the request for views where it depends on the parameters)."""
    marked = getattr(view, "customer_data", False)
    return bool(marked(request) if callable(marked) else marked)


def may_read_customer_data(request) -> bool:
    return settings.KMS_PUBLIC_CUSTOMER_READ or bool(request.user and request.user.is_authenticated)


class ReadOnlyOrWriteScope(permissions.BasePermission):
    """Reads of customer data (users, their events, their recommendations): any key or session
    unless KMS_PUBLIC_CUSTOMER_READ; other reads (catalogue, search, popular, similar, the
    product graph): anyone if KMS_PUBLIC_READ (default), else any key or session; writes: write
    keys or staff."""

    message = "writes need an API key with the write scope"

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            if reads_customer_data(request, view):
                return may_read_customer_data(request)
            return settings.KMS_PUBLIC_READ or bool(request.user and request.user.is_authenticated)
        return can_write(request)


class _ThrottleHistories:
    """The throttle's request-time histories, in this process, as deques.

    DRF keeps each key's history as a list in the Django cache: the local-memory cache pickles it
    on every get and set, and at the default rate (100,000/min) a busy key's list holds tens of
    thousands of times, which cost a millisecond per request, more than a cached recommendation.
    These deques are never copied, and DRF's own operations on them (``insert(0, …)`` on the
    left, ``pop()`` on the right) are O(1). Per process, as the local-memory cache was."""

    MAX_KEYS = 10_000

    def __init__(self):
        self.histories: dict[str, deque] = {}

    def get(self, key: str, default=None) -> deque:
        return self.histories.get(key) or deque()

    def set(self, key: str, history, timeout=None) -> None:
        if len(self.histories) >= self.MAX_KEYS and key not in self.histories:
            self.histories.clear()  # unknown callers (per-IP) must not grow it without bound
        self.histories[key] = history if isinstance(history, deque) else deque(history)

    def clear(self) -> None:
        self.histories.clear()


throttle_histories = _ThrottleHistories()


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    scope = "api_key"
    cache = throttle_histories

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            ident = f"key-{request.auth.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
