"""What each exposed task may be called with, as JSON Schema: the
``args`` and ``kwargs`` that :meth:`myapp.jobs.exposure.ExposedTask.
check_arguments` lets through, read from the same signature and
annotations.

Read from the app's registry when the document is asked for: an app that
exposes another task gets its own calls described.
"""
import inspect
import typing

from ..jobs.exposure import JSON_NAMES, NAMED_TYPES, UNIONS

P = inspect.Parameter
POSITIONAL = (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)
KEYWORD = (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)
#: Any JSON value.
ANY = {}


def task_call_schema(exposed_tasks):
    """``allOf`` of one rule per exposed task: when a body names it, its
    ``args`` and ``kwargs`` are the task's."""
    return {'allOf': [
        {'if': {'properties': {'task': {'const': name}},
                'required': ['task']},
         'then': {'properties': arguments(exposed.signature)}}
        for name, exposed in sorted(exposed_tasks.items())]}


def arguments(signature):
    """``{"args": schema, "kwargs": schema}`` of a call to ``signature``.

    No ``minItems`` and no ``required``: a parameter that is positional or
    keyword may come either way.
    """
    parameters = list(signature.parameters.values())
    positional = [p for p in parameters if p.kind in POSITIONAL]
    keywords = [p for p in parameters if p.kind in KEYWORD]
    rest = {p.kind: p for p in parameters
            if p.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD)}
    args = {'type': 'array',
            'prefixItems': [annotation_schema(p.annotation)
                            for p in positional]}
    if P.VAR_POSITIONAL in rest:
        args['items'] = annotation_schema(rest[P.VAR_POSITIONAL].annotation)
    else:
        args['maxItems'] = len(positional)
    kwargs = {'type': 'object',
              'properties': {p.name: annotation_schema(p.annotation)
                             for p in keywords},
              'additionalProperties': annotation_schema(
                  rest[P.VAR_KEYWORD].annotation)
              if P.VAR_KEYWORD in rest else False}
    return {'args': args, 'kwargs': kwargs}


def annotation_schema(annotation):
    """What a parameter so annotated accepts: a JSON type or a few, or
    anything where JSON cannot tell (no annotation, a class of the task's
    own), as :func:`myapp.jobs.exposure.accepts` reads it."""
    if isinstance(annotation, str):
        annotation = NAMED_TYPES.get(annotation.strip(), annotation)
    if typing.get_origin(annotation) in UNIONS:
        members = [annotation_schema(member)
                   for member in typing.get_args(annotation)]
        if ANY in members:
            return ANY
        return {'type': sorted({name for member in members
                                for name in member['type']})}
    name = JSON_NAMES.get(typing.get_origin(annotation) or annotation)
    return ANY if name is None else {'type': [name]}
