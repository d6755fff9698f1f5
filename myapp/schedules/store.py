"""Periodic jobs in the ``periodic_jobs`` table: made, changed, removed,
and the ini's ``[celerybeat:NAME]`` sections synchronised into it.

Every way a periodic job is written goes through here, and through the
same check as an ini section (:func:`~myapp.celery_integration.schedules.
checked_definition`, and the task and its arguments), so the table never
holds a job that beat would refuse.  A refusal is :class:`InvalidSchedule`
(naming the field) or :class:`OwnedByIni`.
"""
import logging

from sqlalchemy import select

from ..celery_integration.ini import read_ini, section_items
from ..celery_integration.schedules import (Definition, beat_definition,
                                            checked_definition,
                                            task_call_problem)
from ..models.schedule import SOURCE_API, SOURCE_INI, PeriodicJob
from ..models.types import utcnow

log = logging.getLogger(__name__)

SECTION_PREFIX = 'celerybeat:'
#: The fields of a definition, as an API request and a row name them.
DEFINITION_FIELDS = ('task', 'type', 'schedule', 'args', 'kwargs',
                     'options', 'timezone', 'enabled')
#: What may change in a periodic job the ini owns.
INI_CHANGEABLE = ('enabled',)


class InvalidSchedule(Exception):
    def __init__(self, field, problem, hint=None):
        super().__init__(f'{field}: {problem}' + (f' ({hint})' if hint
                                                  else ''))
        self.field, self.problem, self.hint = field, problem, hint


class OwnedByIni(Exception):
    """A change to what the ini defines (only ``enabled`` may change)."""

    def __init__(self, job, fields):
        self.section = SECTION_PREFIX + job.name
        self.fields = sorted(fields)
        super().__init__(f'defined in the ini section [{self.section}]: '
                         f'change {", ".join(self.fields)} there')


def definition_of(job):
    """The :class:`~myapp.celery_integration.schedules.Definition` a row
    holds."""
    return Definition(task=job.task, type=job.type, schedule=job.schedule,
                      args=job.args, kwargs=job.kwargs,
                      options=job.options, timezone=job.timezone,
                      enabled=job.enabled)


def check_definition(app, values):
    """A checked :class:`Definition` of ``values`` (JSON values by field),
    or :class:`InvalidSchedule` naming the first field that is wrong."""
    def error(field, problem, hint=None):
        return InvalidSchedule(field, problem, hint)

    if not isinstance(values.get('task'), str) or not values['task']:
        raise error('task', 'missing: a periodic job needs task, type and '
                    'schedule')
    for field in ('type', 'schedule'):
        if values.get(field) is None:
            raise error(field, 'missing: a periodic job needs task, type '
                        'and schedule')
    if not isinstance(values['type'], str):
        raise error('type', 'must be a string')
    if 'enabled' in values and not isinstance(values['enabled'], bool):
        raise error('enabled', 'must be true or false')
    if values.get('timezone') is not None and \
            not isinstance(values['timezone'], str):
        raise error('timezone', 'must be a string, e.g. "Europe/Paris"')
    definition = checked_definition(error, {
        key: values[key] for key in DEFINITION_FIELDS if key in values})
    problem = task_call_problem(app, definition.task, definition.args,
                                definition.kwargs)
    if problem:
        raise error(*problem)
    return definition


def create(dbsession, app, name, values):
    """Add the periodic job ``name`` (made over HTTP or on a page)."""
    definition = check_definition(app, values)
    job = PeriodicJob(name=name, source=SOURCE_API, total_runs=0,
                      **definition._asdict())
    dbsession.add(job)
    dbsession.flush()
    return job


def change(dbsession, app, job, values):
    """Change the fields given in ``values``; an ini job only ``enabled``.

    The definition is checked whole, as it will be after the change.
    """
    if job.source == SOURCE_INI:
        owned = set(values) - set(INI_CHANGEABLE)
        if owned:
            raise OwnedByIni(job, owned)
    current = definition_of(job)._asdict()
    definition = check_definition(app, {**current, **values})
    for field, value in definition._asdict().items():
        if getattr(job, field) != value:
            setattr(job, field, value)
    job.changed_at = utcnow()
    dbsession.flush()
    return job


def delete(dbsession, job):
    if job.source == SOURCE_INI:
        raise OwnedByIni(job, ['the job itself (remove the section)'])
    dbsession.delete(job)
    dbsession.flush()


def ini_sections(ini_path):
    """``{name: {key: text}}`` of the ini's ``[celerybeat:NAME]`` sections."""
    parser = read_ini(ini_path)
    return {section[len(SECTION_PREFIX):]: dict(section_items(parser,
                                                              section))
            for section in parser.sections()
            if section.startswith(SECTION_PREFIX)}


def synchronise_ini(dbsession, ini_path):
    """Make the table's ``ini`` jobs what the ini's sections say.

    A section not in the table is added; one that changed since the last
    synchronisation is updated (its ``enabled`` too, if that line
    changed: else what was switched at run time stays); a job whose
    section is gone is removed.  Returns ``(added, updated, removed)`` names.  The ini was checked at
    start-up, so its sections are valid.
    """
    sections = {name: (items, beat_definition(
        ini_path, SECTION_PREFIX + name, items))
        for name, items in ini_sections(ini_path).items()}
    jobs = {job.name: job for job in dbsession.scalars(select(PeriodicJob))}
    added, updated, removed = [], [], []
    for name, (items, definition) in sorted(sections.items()):
        job = jobs.get(name)
        if job is None:
            dbsession.add(PeriodicJob(name=name, source=SOURCE_INI,
                                      ini_section=items, total_runs=0,
                                      **definition._asdict()))
            added.append(name)
        elif job.source != SOURCE_INI or job.ini_section != items:
            if job.source != SOURCE_INI:
                log.warning('periodic job %s: the ini section [%s%s] now '
                            'defines it (it was made over HTTP)', name,
                            SECTION_PREFIX, name)
            enabled_changed = job.source != SOURCE_INI or \
                (job.ini_section or {}).get('enabled') != items.get('enabled')
            for field, value in definition._asdict().items():
                if field != 'enabled' or enabled_changed:
                    setattr(job, field, value)
            job.source, job.ini_section = SOURCE_INI, items
            job.changed_at = utcnow()
            updated.append(name)
    for name, job in sorted(jobs.items()):
        if job.source == SOURCE_INI and name not in sections:
            dbsession.delete(job)
            removed.append(name)
    dbsession.flush()
    return added, updated, removed


def get(dbsession, name):
    return dbsession.get(PeriodicJob, name)


def all_jobs(dbsession):
    return dbsession.scalars(select(PeriodicJob)
                             .order_by(PeriodicJob.name)).all()
