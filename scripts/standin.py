"""Starts the MongoDB stand-in (nx-27017 0.8.1) with one fix to neosqlite 1.17.2's updates.

neosqlite has two update paths. Its SQL path stores a date given to $set/$max as a string and,
after a $push, stores every element of the array as a JSON string. Its Python path keeps the
types but treats dotted paths as literal keys in every operator except $set. This splits each
update: scalar changes go to the SQL path, and $push/$addToSet/$currentDate and any $set or
$setOnInsert of a date, document or array go to the Python path, applied right after it in the
same server call. Arguments are nx-27017's own. Only development and CI use this; the product
talks to real MongoDB unchanged.
"""
import datetime
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

from nx_27017.nx_27017 import main  # noqa: E402

sys.exit(main())
