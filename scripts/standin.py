"""Starts the MongoDB stand-in (nx-27017 0.8.1) with fixes to neosqlite 1.17.2.

neosqlite has two update paths. Its SQL path stores a date given to $set/$max as a string and,
after a $push, stores every element of the array as a JSON string. Its Python path keeps the
types but treats dotted paths as literal keys in every operator except $set. This splits each
update: scalar changes go to the SQL path, and $push/$addToSet/$currentDate and any $set or
$setOnInsert of a date, document or array go to the Python path, applied right after it in the
same server call. Finds: see "Finds that stay indexed" below. Arguments are nx-27017's own.
Only development and CI use this; the product talks to real MongoDB unchanged.
"""
import datetime
import json
import sys

from neosqlite.collection.query_helper import update_operations

_STRUCTURED_OPS = {"$push", "$addToSet", "$currentDate"}
_original_internal_update = update_operations.UpdateOperationsMixin._internal_update


def _is_structured(value):
    return isinstance(value, (datetime.datetime, dict, list))


def _split(update_spec):
    sql_part, python_part = {}, {}
    for op, spec in update_spec.items():
        if op in _STRUCTURED_OPS:
            python_part[op] = spec
            continue
        if op in ("$set", "$setOnInsert", "$max", "$min") and isinstance(spec, dict):
            # The Python path's $max/$min only understand top-level keys.
            movable = (lambda k: True) if op in ("$set", "$setOnInsert") else (lambda k: "." not in k)
            rich = {k: v for k, v in spec.items() if _is_structured(v) and movable(k)}
            plain = {k: v for k, v in spec.items() if k not in rich}
            if plain:
                sql_part[op] = plain
            if rich:
                python_part[op] = rich
            continue
        sql_part[op] = spec
    return sql_part, python_part


def _internal_update(self, doc_id, update_spec, original_doc, array_filters=None, query_filter=None):
    sql_part, python_part = _split(update_spec)
    if not python_part or not sql_part or doc_id == 0 or array_filters:
        if python_part and not sql_part and doc_id != 0 and not array_filters:
            return self._perform_python_update(
                doc_id, python_part, original_doc, array_filters, query_filter
            )
        return _original_internal_update(
            self, doc_id, update_spec, original_doc, array_filters, query_filter
        )
    first, changed_first = _original_internal_update(
        self, doc_id, sql_part, original_doc, array_filters, query_filter
    )
    second, changed_second = self._perform_python_update(
        doc_id, python_part, first, array_filters, query_filter
    )
    return second, changed_first or changed_second


update_operations.UpdateOperationsMixin._internal_update = _internal_update


# --- Finds that stay indexed as a collection grows -------------------------------------------
# neosqlite stores an ObjectId as {"__neosqlite_objectid__":true,"id":HEX} and a date as
# {"$date":ISO} inside the JSON text, but translates a filter's ObjectId to the bare HEX string
# (equality then matches nothing; `$in` matches through json_each over the object's members, a
# full scan) and sends any date condition, `$and` or `$or` to a Python scan of the whole
# collection. Here an ObjectId or date condition on a top-level field becomes a comparison with
# the stored JSON text, which the expression indexes (json_extract(data, '$.f')) can serve, and
# `$and`/`$or` become SQL when every part does. Anything else keeps neosqlite's own path.
from neosqlite.collection import cursor as _cursor  # noqa: E402
from neosqlite.collection.datetime_utils import is_datetime_value  # noqa: E402
from neosqlite.collection.json_helpers import neosqlite_json_dumps_for_sql  # noqa: E402
from neosqlite.collection.json_path_utils import parse_json_path  # noqa: E402
from neosqlite.collection import query_helper as _helpers  # noqa: E402
from neosqlite.collection.query_helper import _sql_query_builder as _builder  # noqa: E402
from neosqlite.collection.type_correction import normalize_id_query_for_db  # noqa: E402
from neosqlite.objectid import ObjectId as _ObjectId  # noqa: E402

_original_where = _builder.SqlQueryBuilderMixin._build_simple_where_clause
_original_has_index = _builder.SqlQueryBuilderMixin._field_has_index
_original_datetime_check = _cursor.Cursor._contains_datetime_operations
_RANGES = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
_SPECIAL = {"$text", "$expr", "$jsonSchema", "$where", "$function", "$accumulator"}


class _Untranslatable(Exception):
    pass


class _ObjectIdText(str):
    """The hex string neosqlite turns a filter's ObjectId into, still known as an ObjectId."""


def _tag(value, key=None):
    if isinstance(value, _ObjectId) and key != "_id":
        return _ObjectIdText(str(value))
    if isinstance(value, dict):
        # Operators ($in, $eq, ...) keep the field they apply to; other keys name a field.
        return {k: _tag(v, key if k.startswith("$") and key else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_tag(v, key) for v in value]
    return value


def _typed(value):
    return isinstance(value, (_ObjectIdText, datetime.datetime))


def _stored_text(value):
    if isinstance(value, _ObjectIdText):
        value = _ObjectId(str(value))
    return neosqlite_json_dumps_for_sql(value)


def _mentions_typed(value):
    if _typed(value):
        return True
    if isinstance(value, dict):
        return any(_mentions_typed(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_mentions_typed(v) for v in value)
    return False


def _typed_clause(self, field, value):
    """SQL for an ObjectId or date condition on a top-level field, or None if it is not one."""
    if field.startswith("$") or field == "_id":
        return None
    ops = value if isinstance(value, dict) else {"$eq": value}
    if not ops or not any(_mentions_typed(v) for v in ops.values()):
        return None
    if "." in field or not set(ops) <= {"$eq", "$in", *_RANGES}:
        raise _Untranslatable
    prefix = self.jsonb.json_function_prefix
    path = f"'{parse_json_path(field)}'"
    extract = f"{prefix}_extract(data, {path})"
    clauses, params = [], []
    for op, operand in ops.items():
        if op in _RANGES:
            # Only dates have a comparable stored text; the type guard keeps numbers and
            # strings (which SQLite orders before any text) from matching.
            if not isinstance(operand, datetime.datetime):
                raise _Untranslatable
            clauses.append(f"({extract} {_RANGES[op]} ? AND json_type(data, {path}) = 'object')")
            params.append(_stored_text(operand))
            continue
        values = list(operand) if op == "$in" else [operand]
        if not values or not all(_typed(v) for v in values):
            raise _Untranslatable
        texts = [_stored_text(v) for v in values]
        marks = ", ".join("?" for _ in texts)
        clause = f"{extract} IN ({marks})"
        params.extend(texts)
        if not self._field_has_index(field):
            # MongoDB also matches an array holding the value; like neosqlite's own string
            # equality (#99), that form is left out on an indexed field so the index serves.
            clause = (
                f"({clause} OR EXISTS (SELECT 1 FROM {self.jsonb.json_each_function}"
                f"(data, {path}) AS je WHERE json_type(data, {path}) = 'array'"
                f" AND je.value IN ({marks})))"
            )
            params.extend(texts)
        clauses.append(clause)
    return " AND ".join(clauses), params


def _strip(result):
    where, params, tables = result
    return (where[len("WHERE "):] if where.startswith("WHERE ") else where), params, tables


def _translate(self, query):
    """The WHERE clause with the typed forms above, or None where they do not cover the query."""
    clauses, params, tables, rest = [], [], [], {}
    try:
        for field, value in query.items():
            if field in ("$and", "$or"):
                if not isinstance(value, list) or not value:
                    return None
                parts = []
                for branch in value:
                    if not isinstance(branch, dict) or _SPECIAL & set(branch):
                        return None
                    result = _translate(self, branch)
                    if result is None:
                        return None
                    where, branch_params, branch_tables = _strip(result)
                    parts.append(f"({where or '1'})")
                    params.extend(branch_params)
                    tables.extend(branch_tables)
                joiner = " AND " if field == "$and" else " OR "
                clauses.append(f"({joiner.join(parts)})")
                continue
            typed = _typed_clause(self, field, value)
            if typed is None:
                rest[field] = value
                continue
            clauses.append(typed[0])
            params.extend(typed[1])
    except _Untranslatable:
        return None
    if rest:
        if _mentions_typed({k: v for k, v in rest.items() if k != "_id"}) or {
            "$nor", "$not"
        } & set(rest):
            return None
        result = _original_where(self, rest)
        if result is None:
            return None
        where, rest_params, rest_tables = _strip(result)
        if where:
            clauses.append(where)
            params.extend(rest_params)
            tables.extend(rest_tables)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params, tables


def _build_simple_where_clause(self, query):
    if not isinstance(query, dict) or _SPECIAL & set(query) or not (
        {"$and", "$or"} & set(query) or _mentions_typed(query)
    ):
        return _original_where(self, query)
    result = _translate(self, query)
    return result if result is not None else _original_where(self, query)


def _field_has_index(self, field):
    """Also counts the leading key of a compound index, which SQLite can search by."""
    if _original_has_index(self, field):
        return True
    try:
        names = [n for n in self.collection.list_indexes() if isinstance(n, str)]
        marks = ", ".join("?" for _ in names)
        rows = self.collection.db.execute(
            f"SELECT keys_json FROM neosqlite_index_keys WHERE index_name IN ({marks})", names
        ).fetchall() if names else []
        return any(json.loads(keys)[:1] == [field] for (keys,) in rows)
    except Exception:
        return False


def _mentions_date_text(value):
    if isinstance(value, str):
        return is_datetime_value(value)
    if isinstance(value, dict):
        return any(_mentions_date_text(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_mentions_date_text(v) for v in value)
    return False


def _contains_datetime_operations(self, query):
    """Date objects the SQL translation above covers need no Python scan (date-like strings
    still do: neosqlite's date processor reads them as dates)."""
    if not _original_datetime_check(self, query):
        return False
    if not isinstance(query, dict) or _SPECIAL & set(query) or _mentions_date_text(query):
        return True
    return _translate(self._query_helpers, query) is None


def _normalize_id_query(self, query):
    return normalize_id_query_for_db(_tag(query))


_helpers.QueryHelper._normalize_id_query = _normalize_id_query
_builder.SqlQueryBuilderMixin._build_simple_where_clause = _build_simple_where_clause
_builder.SqlQueryBuilderMixin._field_has_index = _field_has_index
_cursor.Cursor._contains_datetime_operations = _contains_datetime_operations

from nx_27017.nx_27017 import main  # noqa: E402

sys.exit(main())
