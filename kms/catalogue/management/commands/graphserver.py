from django.conf import settings
from django.core.management.base import BaseCommand

from graph.server import ensure_local_server, stop_local_server


class Command(BaseCommand):
    help = "Start, stop or show the local ArcadeDB graph store (used when NEO4J_URI is not set)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop", "status"])

    def handle(self, *args, action, **options):
        root = settings.KMS_GRAPH["LOCAL_ROOT"]
        if action == "stop":
            self.stdout.write("stopped" if stop_local_server(root) else "not running")
        else:
            info = ensure_local_server(root, java_opts=settings.KMS_GRAPH["JAVA_OPTS"]) if action == "start" else None
            if action == "status":
                from graph.server import ServerInfo, _alive, port_open
                import json

                state = root / "server.json"
                if state.exists():
                    info = ServerInfo(**json.loads(state.read_text()))
                    if not (_alive(info.pid) and port_open(info.bolt_port)):
                        info = None
            self.stdout.write(f"running: {info.uri} (pid {info.pid})" if info else "not running")
