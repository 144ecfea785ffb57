"""``field__any=[...]``: membership in a list passed as one array parameter on PostgreSQL.

Django's ``__in`` sends one parameter per value, and psycopg's client-side binding adapts and
splices each of them into the SQL text in Python: for the few hundred ids of an ingestion chunk
that costs more client CPU than the query itself. ``= ANY(%s)`` adapts the whole list at once.
Other databases get a plain ``IN``.
"""
from django.db.models import Field, ForeignKey, Lookup


@ForeignKey.register_lookup
@Field.register_lookup
class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [self.lhs.output_field.get_db_prep_value(v, connection) for v in self.rhs]
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*lhs_params, values]
        if not values:
            return "1 = 0", list(lhs_params)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]
