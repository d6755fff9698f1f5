"""The integration on its own: a bare Pyramid app (tests/standalone_app.py)
includes ``myapp.celery_integration``, and a real worker runs its task."""
import os

import pytest
from pyramid.paster import get_app

from .standalone_app import double
from .support import FILESYSTEM_OPTIONS, LOGGING, PROJECT, RUN_QUEUE, Worker

pytestmark = pytest.mark.worker

GREETING = 'hello from the standalone app'
STANDALONE_INI = """\
[app:main]
use = call:tests.standalone_app:main
standalone.greeting = {greeting}

[celery]
broker_url = filesystem://localhost//
result_backend = db+sqlite:///%(here)s/var/results.sqlite
task_default_queue = {queue}
worker_concurrency = 1
{transport}
{logging}
"""


@pytest.fixture
def standalone_ini(tmp_path):
    """No database and nothing of myapp's: a filesystem broker and SQLite
    results under tmp_path, and logging as pserve would set it up."""
    ini = tmp_path / 'standalone.ini'
    ini.write_text(STANDALONE_INI.format(
        greeting=GREETING, queue=RUN_QUEUE, transport=FILESYSTEM_OPTIONS,
        logging=LOGGING))
    return str(ini)


def importing_the_tests():
    """The environment for a worker that imports ``tests.standalone_app``
    (the ini's ``use = call:...``)."""
    path = os.pathsep.join(filter(None, [PROJECT,
                                         os.environ.get('PYTHONPATH')]))
    return {**os.environ, 'PYTHONPATH': path}


def test_a_bare_pyramid_app_runs_its_task_on_a_real_worker(standalone_ini):
    with Worker(standalone_ini, '--loglevel', 'INFO',
                env=importing_the_tests()) as worker:
        get_app(standalone_ini)
        result = double.delay(21)
        assert result.get(timeout=20) == {'doubled': 42, 'greeting': GREETING}
    log = worker.output()
    assert '. standalone.double' in log  # the [tasks] banner lists it...
    assert 'myapp.tasks' not in log      # ...and none of myapp's tasks
