"""Every broken ini stops every command with one line (issue 12, item 8).

:data:`CASES` is the table: one realistic mistake per row, made to an ini
that otherwise starts (the test ini of :func:`.support.write_ini`, with a
waitress server for pserve), and what the one line must say.  Each row is
checked twice:

* in this process (fast lane): :func:`check_ini`, which ``pceleryd``,
  ``pcelerybeat``, ``pserve`` and ``pshell`` run first, then the app's
  ``main()`` for what needs the app (its settings, its tasks);
* as processes (``worker`` marker): ``pserve``, ``pshell``, ``pceleryd``
  and ``pcelerybeat`` on the same file, the four at once; each must exit
  non-zero with exactly one ``error:`` line naming the file, the section and
  the key, no traceback, and never start (pserve must not serve).
"""
import os
import re
import subprocess
import textwrap

import pytest
from pyramid.paster import get_app

from myapp.celery_integration.errors import (ConfigError, StartupError,
                                             mask_secrets)
from myapp.celery_integration.settings import (check_ini,
                                               load_celery_settings,
                                               transport_option_types)

from .support import BIN, write_ini

SERVER = """
[server:main]
use = egg:waitress#main
listen = 127.0.0.1:0
"""
#: A password put in URLs: no message may show it.
PASSWORD = 'hunter2'
#: What the environment could set instead of the ini: unset in these tests.
OVERRIDES = ('CELERY_BROKER_URL', 'CELERY_RESULT_BACKEND', 'DATABASE_URL',
             'MYAPP_SESSION_SECRET')
COMMANDS = ('pserve', 'pshell', 'pceleryd', 'pcelerybeat')
#: What each command prints once it runs: none may appear.
STARTED = ('Serving on', 'Environment:', 'ready.', 'beat: Starting')

#: In the fragments: the line need not name the file.
NOT_THE_FILE = object()
# Special mutations: the file is not there, or is a folder.
MISSING, FOLDER = 'missing', 'folder'


def replace(old, new):
    def mutate(text):
        assert old in text, old
        return text.replace(old, new, 1)
    return mutate


def add(section, *lines):
    """Lines added at the top of ``[section]``."""
    return replace(f'[{section}]\n', f'[{section}]\n' + '\n'.join(lines)
                   + '\n')


def append(more):
    return lambda text: text + textwrap.dedent(more)


def remove(line):
    return replace(line + '\n', '')


def beat(**keys):
    items = {'task': 'myapp.tasks.add', 'type': 'integer', 'schedule': '30',
             'args': '[1, 2]', **keys}
    return append('\n[celerybeat:job]\n' + ''.join(
        f'{key} = {value}\n' for key, value in items.items()))


CELERY = 'section [celery]'
APP = 'section [app:main]'
BEAT = 'section [celerybeat:job]'
OPTIONS = 'section [celery:broker_transport_options]'

#: (name, mutation, fragments of the error line besides the file's path).
CASES = [
    # -- the file ----------------------------------------------------------
    ('missing file', MISSING, ['missing.ini']),
    ('a folder, not a file', FOLDER, ['folder.ini']),
    ('not UTF-8', replace('[pshell]', '# caf\xe9\n[pshell]'),
     ['not UTF-8', 'save it as UTF-8']),
    ('line without "="', add('celery', 'worker_prefetch_multiplier 4'),
     [CELERY, 'is not "key = value": worker_prefetch_multiplier 4']),
    ('text before any section', lambda text: 'use = egg:myapp\n' + text,
     ['line 1 comes before any [section]']),
    ('duplicate key', add('celery', 'task_default_queue = other'),
     [CELERY, 'key "task_default_queue": given a second time']),
    ('duplicate section', append('\n[celery]\ntimezone = UTC\n'),
     ['section [celery]: a second section of this name']),
    ('undefined %(name)s', replace('sqlite:///%(here)s',
                                   'sqlite:///%(heer)s'),
     [APP, 'key "sqlalchemy.url"', '"%(heer)s" is not defined']),
    # -- the PasteDeploy sections -------------------------------------------
    ('missing [app:main]', replace('[app:main]', '[app:myapp]'),
     ['section [app:main]: missing', 'did you mean [app:myapp]?']),
    ('bad use = egg:', replace('use = egg:myapp', 'use = egg:myap'),
     [APP, 'key "use"', 'no installed package "myap"',
      'did you mean "myapp"?']),
    ('[pshell] setup misspelt', replace('myapp.pshell.setup',
                                        'myapp.pshel.setup'),
     ['section [pshell], key "setup": no module named "myapp.pshel.setup"']),
    ('[server:main] listen', replace('listen = 127.0.0.1:0',
                                     'listen = 127.0.0.1:http'),
     ['section [server:main], key "listen"', '"127.0.0.1:http" is not '
      'host:port']),
    ('unknown waitress setting', add('server:main', 'thread = 4'),
     ['section [server:main], key "thread": not a waitress setting',
      'did you mean "threads"?']),
    ('unknown logging level', replace('level = INFO', 'level = LOUD'),
     ['section [logger_root], key "level"', '"LOUD" is not a logging level']),
    ('logger without its section', replace('keys = root', 'keys = root, app'),
     ['section [loggers], key "keys"', 'no [logger_app] section']),
    ('unknown handler class', replace('class = StreamHandler',
                                      'class = StreamHandlr'),
     ['section [handler_console], key "class"', 'did you mean '
      '"StreamHandler"?']),
    # -- the app's own settings ---------------------------------------------
    ('bad sqlalchemy.url', replace('sqlite:///%(here)s/var/myapp.sqlite',
                                   'sqlite//var/myapp.sqlite'),
     [APP, 'key "sqlalchemy.url": not a SQLAlchemy URL']),
    ('unknown database', replace(
        'sqlite:///%(here)s/var/myapp.sqlite',
        f'postgres://myapp:{PASSWORD}@localhost/myapp'),
     [APP, 'key "sqlalchemy.url"', '"postgres" is not a database',
      'did you mean "postgresql"?']),
    # myapp.sessions' message, whose wording test_job_pages fixes: it names
    # the section and key but not the file.
    ('missing session.secret', remove('session.secret = test-session-secret'),
     [NOT_THE_FILE, 'no session secret', 'MYAPP_SESSION_SECRET',
      '"session.secret" in [app:main]']),
    ('bad retry.attempts', add('app:main', 'retry.attempts = three'),
     [APP, 'key "retry.attempts"', '"three" is not a whole number']),
    ('bad auth.enabled',
     replace('auth.enabled = false', 'auth.enabled = maybe'),
     [APP, 'key "auth.enabled"', '"maybe" is not true or false']),
    ('bad schedules.lease_seconds',
     add('app:main', 'schedules.lease_seconds = 1'),
     [APP, 'key "schedules.lease_seconds"', 'a whole number of 3 or more']),
    ('pyramid.includes not installed',
     add('app:main', 'pyramid.includes = pyramid_debugtoolbar'),
     [APP, 'key "pyramid.includes"', 'no module named '
      '"pyramid_debugtoolbar"']),
    # -- [celery] -----------------------------------------------------------
    ('missing [celery]', lambda text: re.sub(
        r'\[celery\]\n(.+\n)+', '', text.replace('[celery:', '[x:'), count=1
    ).replace('[x:', '[celery:'),
     [CELERY, 'key "broker_url": missing: no broker is configured']),
    ('unknown Celery setting', add('celery', 'worker_concurency = 4'),
     [CELERY, 'key "worker_concurency": not a Celery setting',
      'did you mean "worker_concurrency"?']),
    ('bad boolean', add('celery', 'task_acks_late = maybe'),
     [CELERY, 'key "task_acks_late": "maybe" is not a boolean']),
    ('bad integer (any-typed)', replace('worker_concurrency = 2',
                                        'worker_concurrency = two'),
     [CELERY, 'key "worker_concurrency": "two" is not an integer']),
    ('bad number', add('celery', 'result_expires = soon'),
     [CELERY, 'key "result_expires": "soon" is not a number']),
    ('negative number', replace('worker_concurrency = 2',
                                'worker_concurrency = -2'),
     [CELERY, 'key "worker_concurrency": -2 is below zero']),
    ('bad JSON (any-typed)', add('celery', 'task_annotations = {"*": '),
     [CELERY, 'key "task_annotations"', 'is not a JSON object or list']),
    ('bad timezone', add('celery', 'timezone = Asia/Tokio'),
     [CELERY, 'key "timezone": unknown time zone', '"Asia/Tokyo"']),
    ('bad broker scheme', replace(
        'broker_url = filesystem://localhost//',
        f'broker_url = redsi://:{PASSWORD}@localhost:6379/0'),
     [CELERY, 'key "broker_url": "redsi://" is not a broker transport',
      'did you mean "redis"?']),
    ('bad result backend scheme', replace(
        'result_backend = db+sqlite', 'result_backend = db+sqlit'),
     [CELERY, 'key "result_backend": "sqlit" is not a database',
      'did you mean "sqlite"?']),
    ('unknown result backend', replace(
        'result_backend = db+sqlite:///%(here)s/var/results.sqlite',
        f'result_backend = reddis://:{PASSWORD}@localhost/0'),
     [CELERY, 'key "result_backend": "reddis" is not a result backend',
      'did you mean "redis"?']),
    ('imports names a missing module', add('celery', 'imports = myapp.taks'),
     [CELERY, 'key "imports": no module named "myapp.taks"',
      'did you mean "myapp.tasks"?']),
    ('pickle', add('celery', 'task_serializer = pickle'),
     [CELERY, 'key "task_serializer": pickle lets whoever']),
    ('two values for one setting', add('app:main', 'BROKER_URL = memory://'),
     [CELERY, 'key "broker_url": sets broker_url to another value than '
      '[app:main] "BROKER_URL"']),
    ('misspelt section prefix', append('\n[celerybaet:job]\ntask = x\n'),
     ['section [celerybaet:job]: unknown section',
      'did you mean "celerybeat"?']),
    # -- [celery:NAME] -------------------------------------------------------
    ('unknown [celery:NAME]', replace('[celery:broker_transport_options]',
                                      '[celery:broker_transport_option]'),
     ['section [celery:broker_transport_option]',
      'did you mean "broker_transport_options"?']),
    ('transport option misspelt', replace('polling_interval = 0.05',
                                          'poling_interval = 0.05'),
     [OPTIONS, 'key "poling_interval": not an option of the filesystem '
      'transport', 'did you mean "polling_interval"?']),
    ('transport option of the wrong type',
     replace('polling_interval = 0.05', 'polling_interval = fast'),
     [OPTIONS, 'key "polling_interval": "fast" is not a number']),
    # -- [celeryroute:NAME] --------------------------------------------------
    ('route for a task that does not exist',
     append('\n[celeryroute:myapp.tasks.ad]\nqueue = slow\n'),
     ['section [celeryroute:myapp.tasks.ad]: no task named "myapp.tasks.ad"',
      'did you mean "myapp.tasks.add"?']),
    ('route without a queue',
     append('\n[celeryroute:myapp.tasks.add]\nrouting_key = slow\n'),
     ['section [celeryroute:myapp.tasks.add], key "queue": missing']),
    # -- [celerybeat:NAME] ---------------------------------------------------
    ('periodic job: bad JSON', beat(type='timedelta',
                                    schedule='{"seconds": 30'),
     [BEAT, 'key "schedule": not valid JSON']),
    ('periodic job: unknown type', beat(type='weekly'),
     [BEAT, 'key "type": unknown schedule type "weekly"']),
    ('periodic job: unknown task', beat(task='myapp.tasks.ad'),
     [BEAT, 'key "task": no task named "myapp.tasks.ad"',
      'did you mean "myapp.tasks.add"?']),
    ('periodic job: bad crontab field', beat(type='crontab',
                                             schedule='{"hour": "25"}'),
     [BEAT, 'key "schedule": not a valid crontab schedule: hour "25"']),
    ('periodic job: arguments do not fit', beat(args='[1]'),
     [BEAT, 'key "args": the arguments do not fit myapp.tasks.add']),
    ('periodic job: unknown key', beat(schedul='30'),
     [BEAT, 'key "schedul": unknown key', 'did you mean "schedule"?']),
]
IDS = [case[0].replace(' ', '-') for case in CASES]


@pytest.fixture
def clean_environment(monkeypatch):
    for name in OVERRIDES:
        monkeypatch.delenv(name, raising=False)


def broken_ini(directory, initialize_db, mutation):
    """The ini with one mistake (its database initialised, so that only
    the mistake can stop the app)."""
    ini = initialize_db(write_ini(directory, extra=SERVER))
    if mutation == MISSING:
        return os.path.join(str(directory), 'missing.ini')
    if mutation == FOLDER:
        folder = os.path.join(str(directory), 'folder.ini')
        os.mkdir(folder)
        return folder
    with open(ini, encoding='utf-8') as handle:
        text = handle.read()
    broken = mutation(text)
    with open(ini, 'w', encoding='latin-1' if 'caf\xe9' in broken
              else 'utf-8') as handle:
        handle.write(broken)
    return ini


def check_line(line, ini, fragments):
    assert line.startswith('error: '), line
    if NOT_THE_FILE in fragments:
        fragments = [f for f in fragments if f is not NOT_THE_FILE]
    else:
        assert os.path.abspath(ini) in line or ini in line, line
    for fragment in fragments:
        assert fragment in line, f'{fragment!r} not in {line!r}'
    assert PASSWORD not in line


# -- in this process: what each command checks first, then main() ------------

@pytest.mark.parametrize('name, mutation, fragments', CASES, ids=IDS)
def test_each_mistake_is_one_error_in_process(
        name, mutation, fragments, tmp_path, initialize_db,
        clean_environment):
    ini = broken_ini(tmp_path, initialize_db, mutation)
    try:
        check_ini(ini)
        get_app(ini)
    except ConfigError as exc:
        line = f'error: {exc}'
    except StartupError as exc:
        line = str(exc.code)
    else:
        pytest.fail(f'{name}: the app started')
    assert '\n' not in line
    check_line(line, ini, fragments)


# -- as processes: every command --------------------------------------------

@pytest.mark.worker
@pytest.mark.parametrize('name, mutation, fragments', CASES, ids=IDS)
def test_each_mistake_stops_every_command_with_one_line(
        name, mutation, fragments, tmp_path, initialize_db):
    ini = broken_ini(tmp_path, initialize_db, mutation)
    env = {key: value for key, value in os.environ.items()
           if key not in OVERRIDES}
    processes = {command: subprocess.Popen(
        [os.path.join(BIN, command), ini], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        cwd=tmp_path) for command in COMMANDS}
    outputs = {}
    for command, process in processes.items():
        try:
            outputs[command] = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            outputs[command] = process.communicate()
            outputs[command] = ('', f'{command} still ran after 30 s\n'
                                + outputs[command][1])
    for command, (stdout, stderr) in outputs.items():
        process = processes[command]
        context = f'{command} {name}:\n{stderr}'
        assert process.returncode != 0, context
        assert 'Traceback' not in stderr, context
        for text in STARTED:
            assert text not in stdout + stderr, context
        lines = [line for line in stderr.splitlines()
                 if line.startswith('error: ')]
        assert len(lines) == 1, context
        check_line(lines[0], ini, fragments)
        assert PASSWORD not in stdout + stderr


# -- the validation functions themselves ------------------------------------

def test_enough_classes():
    assert len(CASES) >= 35
    assert len(set(IDS)) == len(IDS)


def test_passwords_are_masked_in_every_message():
    assert mask_secrets('amqp://user:s3cret@host:5672// and '
                        'db+postgresql+psycopg://u:p@db/x') == \
        'amqp://user:**@host:5672// and db+postgresql+psycopg://u:**@db/x'
    error = ConfigError('/a.ini', 'celery', 'broker_url',
                        'cannot use "redis://:s3cret@h/0"')
    assert 's3cret' not in str(error)
    assert str(StartupError('x amqp://u:s3cret@h//').code) == \
        'error: x amqp://u:**@h//'


def test_transport_options_of_every_known_transport_are_recognised():
    types = transport_option_types()
    for name in ('data_folder_in', 'data_folder_out', 'control_folder',
                 'processed_folder', 'store_processed', 'polling_interval',
                 'visibility_timeout', 'sep', 'global_keyprefix',
                 'queue_order_strategy', 'confirm_publish', 'connect_timeout',
                 'max_retries', 'interval_start', 'master_name'):
        assert name in types
    assert types['polling_interval'] is float
    assert types['visibility_timeout'] is float


def settings_of(tmp_path, text, **kwargs):
    path = tmp_path / 'app.ini'
    path.write_text(textwrap.dedent(text))
    return load_celery_settings(str(path), environ={}, **kwargs)


def test_a_negative_number_is_allowed_where_celerys_default_is_one(tmp_path):
    settings = settings_of(tmp_path, '[celery]\nresult_cache_max = -1\n')
    assert settings['result_cache_max'] == -1


def test_any_typed_settings_take_their_real_type(tmp_path):
    settings = settings_of(tmp_path, """
        [celery]
        worker_concurrency = 3
        task_annotations = {"*": {"max_retries": 5}}
        task_routes = myapp.routers.route
        """)
    assert settings['worker_concurrency'] == 3
    assert settings['task_annotations'] == {'*': {'max_retries': 5}}
    assert settings['task_routes'] == 'myapp.routers.route'


def test_transport_options_of_an_unchecked_transport_pass(tmp_path):
    settings = settings_of(tmp_path, """
        [celery]
        broker_url = sqs://
        [celery:broker_transport_options]
        region = eu-west-1
        """)
    assert settings['broker_transport_options'] == {'region': 'eu-west-1'}


def test_a_broker_is_required_only_when_asked(tmp_path):
    assert settings_of(tmp_path, '[celery]\n').get('broker_url') is None
    with pytest.raises(ConfigError, match='no broker is configured'):
        settings_of(tmp_path, '[celery]\n', require_broker=True)


def test_failover_broker_urls_are_each_checked(tmp_path):
    settings_of(tmp_path, '[celery]\nbroker_url = amqp://a//;amqp://b//\n')
    with pytest.raises(ConfigError, match='"amqpp://" is not a broker'):
        settings_of(tmp_path, '[celery]\nbroker_url = amqp://a//;amqpp://b//\n')


def test_an_environment_override_is_named_as_such(tmp_path):
    path = tmp_path / 'app.ini'
    path.write_text('[celery]\n')
    with pytest.raises(ConfigError) as info:
        load_celery_settings(str(path), environ={
            'CELERY_BROKER_URL': f'rabbit://u:{PASSWORD}@localhost//'})
    assert 'CELERY_BROKER_URL (which overrides broker_url)' in str(info.value)
    assert PASSWORD not in str(info.value)


def test_the_shipped_inis_pass_every_check(clean_environment):
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name in ('development.ini', 'production.ini'):
        check_ini(os.path.join(project, name))


def test_pserve_variables_may_be_used_in_the_ini(tmp_path):
    ini = write_ini(tmp_path, extra=SERVER.replace('127.0.0.1:0',
                                                   '127.0.0.1:%(port)s'))
    with pytest.raises(ConfigError, match='"%\\(port\\)s" is not defined'):
        check_ini(ini)
    check_ini(ini, variables={'port': '6543'})
