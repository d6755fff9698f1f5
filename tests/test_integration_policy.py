"""What the integration decides by default, and what the app decides.

* which task errors are transient: a sensible default, replaced by the
  app's own test (``config.set_transient_error_test``);
* SQLite pragmas: on the engines they are asked for (the app's own, an
  SQLite result backend's), never on every engine in the process;
* ``origin``: one type builds and reads who asked for a job.
"""
import pytest
import sqlalchemy.exc
from pyramid.config import Configurator
from sqlalchemy import create_engine, text

from myapp.celery_integration import Origin, is_transient_error, task
from myapp.celery_integration.settings import load_celery_settings
from myapp.celery_integration.sqlite import tune_sqlite_engine
from myapp.celery_integration.transient import transient_error_test
from myapp.models import get_engine

from .support import write_ini

attempts = []


@task(max_retries=2)
def fails_with(request, message):
    attempts.append(message)
    raise RuntimeError(message)


def configure_test(registry, test):
    config = Configurator(registry=registry)
    config.include('myapp.celery_integration')
    config.set_transient_error_test(test)
    config.commit()


def test_the_default_transient_test_knows_database_errors():
    locked = sqlalchemy.exc.OperationalError('UPDATE', {},
                                             Exception('database is locked'))
    assert is_transient_error(locked)
    assert not is_transient_error(RuntimeError('rate limited'))
    assert transient_error_test(None) is is_transient_error


def test_the_app_decides_which_errors_are_transient(app):
    attempts.clear()
    configure_test(app.registry, lambda exc: 'rate limited' in str(exc))
    try:
        result = fails_with.apply(args=('rate limited',))
        assert result.failed()
        assert len(attempts) == 3  # the first run and max_retries=2 retries
        attempts.clear()
        fails_with.apply(args=('a bug',))
        assert len(attempts) == 1
    finally:
        del app.registry['celery_integration.transient_error_test']


def test_the_app_test_can_be_named_by_its_dotted_name(app):
    configure_test(app.registry, 'myapp.celery_integration.transient.'
                                 'is_transient_error')
    assert transient_error_test(app.registry) is is_transient_error


# -- SQLite ----------------------------------------------------------------

def journal_mode(engine):
    with engine.connect() as connection:
        return connection.scalar(text('PRAGMA journal_mode'))


def test_sqlite_pragmas_apply_to_the_engines_asked_for(tmp_path):
    app_engine = get_engine(
        {'sqlalchemy.url': f'sqlite:///{tmp_path}/app.sqlite'})
    other_engine = create_engine(f'sqlite:///{tmp_path}/other.sqlite')
    try:
        assert journal_mode(app_engine) == 'wal'
        assert journal_mode(other_engine) == 'delete'  # left alone
    finally:
        app_engine.dispose()
        other_engine.dispose()


def test_tuning_an_engine_twice_listens_once(tmp_path):
    engine = create_engine(f'sqlite:///{tmp_path}/twice.sqlite')
    tune_sqlite_engine(tune_sqlite_engine(engine))
    assert journal_mode(engine) == 'wal'
    engine.dispose()


@pytest.mark.parametrize('backend, callback', [
    ('sqlite', 'myapp.celery_integration.sqlite.tune_sqlite_engine'),
    ('redis', None),
])
def test_an_sqlite_result_backend_is_tuned_by_default(tmp_path, backend,
                                                      callback):
    settings = load_celery_settings(write_ini(tmp_path, backend=backend))
    assert settings.get('database_engine_callback') == callback


# -- origin ------------------------------------------------------------------

@pytest.mark.parametrize('origin, text, parent_id, schedule', [
    (Origin.http(), 'http', None, None),
    (Origin.shell(), 'shell', None, None),
    (Origin.task('4f1e'), 'task:4f1e', '4f1e', None),
    (Origin.beat('nightly:cleanup'), 'beat:nightly:cleanup', None,
     'nightly:cleanup'),
    (Origin.worker('celery@host'), 'worker:celery@host', None, None),
])
def test_an_origin_reads_back_what_it_wrote(origin, text, parent_id,
                                            schedule):
    assert str(origin) == text
    assert Origin.parse(text) == origin
    assert Origin.parse(origin) is origin
    assert (origin.parent_id, origin.schedule) == (parent_id, schedule)
