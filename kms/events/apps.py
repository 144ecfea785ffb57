from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "kms.events"
    label = "events"
