"""``pceleryd INI [worker options]`` and ``pcelerybeat INI [beat options]``.

The same as ``celery -A myapp.celery_integration worker --ini INI`` (see
:mod:`.celery`), plus a usage line, an answer for a missing or broken ini
before Celery is even imported, and the refusal of a second beat on the
same ini before any work starts.
"""
import os
import sys

from .beatlock import BeatAlreadyRunning, hold_beat_lock, needs_machine_lock
from .errors import ConfigError
from .ini import read_ini
from .settings import check_ini

USAGE = 'usage: {prog} INI [celery {command} options]   (e.g. {prog} ' \
        'development.ini{example})'


def pceleryd(argv=None):
    return run_celery('worker', argv, prog='pceleryd', example=' --beat')


def pcelerybeat(argv=None):
    return run_celery('beat', argv, prog='pcelerybeat', example='')


def run_celery(command, argv, prog, example):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith('-'):
        sys.exit(USAGE.format(prog=prog, command=command, example=example))
    ini, options = argv[0], argv[1:]
    if not os.path.isfile(ini):
        sys.exit(f'error: {ini}: no such file; '
                 + USAGE.format(prog=prog, command=command, example=example))
    try:
        check_ini(ini)
    except ConfigError as exc:
        sys.exit(f'error: {exc}')
    runs_beat = command == 'beat' or '--beat' in options or '-B' in options
    if runs_beat and needs_machine_lock(configured_scheduler(ini), ini):
        try:
            hold_beat_lock(os.path.abspath(ini))
        except BeatAlreadyRunning as exc:
            sys.exit(f'error: {exc}')
    # Imported late: importing the app is what costs, and the checks above
    # must answer fast.
    from celery.bin.celery import celery as celery_command

    return celery_command.main(
        args=['-A', __package__, command, '--ini', ini, *options],
        prog_name=prog)


#: Celery's default ``beat_scheduler``.
DEFAULT_SCHEDULER = 'celery.beat:PersistentScheduler'


def configured_scheduler(ini):
    """The ``beat_scheduler`` the ini's ``[celery]`` section names.

    (An app may set a default of its own when it boots; before that, only
    the ini can say, and Celery's default is assumed.)
    """
    parser = read_ini(ini)
    if not parser.has_section('celery'):
        return DEFAULT_SCHEDULER
    return parser.get('celery', 'beat_scheduler', fallback=None) \
        or DEFAULT_SCHEDULER
