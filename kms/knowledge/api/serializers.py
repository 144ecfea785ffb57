"""Knowledge-graph (entities, nodes, neighbours, paths) and ingestion-job shapes (also the OpenAPI schema)."""
from rest_framework import serializers


class EntitySerializer(serializers.Serializer):
    uid = serializers.CharField()
    type = serializers.CharField()
    name = serializers.CharField()
    aliases = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField()
    merged_into = serializers.CharField(allow_null=True)


class EntityQuery(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    type = serializers.CharField(required=False, max_length=32)


class NodeResponse(serializers.Serializer):
    uid = serializers.CharField()
    properties = serializers.DictField()


class NeighboursQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=500, default=50)
    rel = serializers.CharField(required=False, max_length=400,
                                help_text="comma-separated relationship types, e.g. HAS_BRAND,IN_CATEGORY")


class Neighbour(serializers.Serializer):
    uid = serializers.CharField()
    label = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    rel = serializers.CharField()
    direction = serializers.ChoiceField(choices=["in", "out"])
    props = serializers.DictField()


class NeighboursResponse(serializers.Serializer):
    uid = serializers.CharField()
    neighbours = Neighbour(many=True)


class PathQuery(serializers.Serializer):
    src = serializers.CharField(max_length=300)
    dst = serializers.CharField(max_length=300)
    max_hops = serializers.IntegerField(min_value=1, max_value=3, default=3)
    limit = serializers.IntegerField(min_value=1, max_value=20, default=5)


class PathNode(serializers.Serializer):
    uid = serializers.CharField()
    label = serializers.CharField()
    name = serializers.CharField(allow_null=True)


class GraphPath(serializers.Serializer):
    nodes = PathNode(many=True)
    rels = serializers.ListField(child=serializers.CharField())
    hops = serializers.IntegerField()


class PathsResponse(serializers.Serializer):
    src = serializers.CharField()
    dst = serializers.CharField()
    paths = GraphPath(many=True)


class IngestRequest(serializers.Serializer):
    products = serializers.ListField(child=serializers.CharField(max_length=128), required=False,
                                     max_length=100_000, help_text="product ids; omitted: the whole catalogue")
    force = serializers.BooleanField(default=False, help_text="re-extract even unchanged products")


class JobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    state = serializers.CharField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    skipped = serializers.IntegerField()
    failed = serializers.IntegerField()
    rate_per_s = serializers.FloatField()
    errors = serializers.ListField(child=serializers.DictField())
    message = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
