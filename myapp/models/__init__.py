import os

import zope.sqlalchemy
from sqlalchemy import engine_from_config, make_url
from sqlalchemy.orm import configure_mappers, sessionmaker

from ..celery_integration.sqlite import tune_sqlite_engine
from ..celery_integration.timeouts import database_connect_args
from .calculation import Calculation  # noqa: F401
from .job import Job  # noqa: F401
from .schedule import BeatLease, PeriodicJob  # noqa: F401
from .token import AccessToken  # noqa: F401
from .worker import Worker  # noqa: F401
from .schema import check_schema_is_current

# Run ``configure_mappers`` after defining all of the models to ensure
# all relationships can be set up.
configure_mappers()

#: Overrides ``sqlalchemy.url`` so that production secrets stay out of the ini.
DATABASE_URL_VARIABLE = 'DATABASE_URL'


def database_url(settings, prefix='sqlalchemy.'):
    """The app database's URL: ``DATABASE_URL``, else ``sqlalchemy.url``."""
    return make_url(os.environ.get(DATABASE_URL_VARIABLE)
                    or settings[prefix + 'url'])


def get_engine(settings, prefix='sqlalchemy.'):
    settings = dict(settings)
    settings[prefix + 'url'] = database_url(settings, prefix)
    # With the embedded defaults the web app, every worker process and beat
    # write to one SQLite file: WAL and a busy timeout let them take turns.
    # A PostgreSQL server that accepts connections but never answers must
    # not hang every command: psycopg's connect timeout (.timeouts).
    url = settings[prefix + 'url']
    return tune_sqlite_engine(engine_from_config(
        settings, prefix, connect_args=database_connect_args(url)))


def get_session_factory(engine):
    factory = sessionmaker()
    factory.configure(bind=engine)
    return factory


def get_tm_session(session_factory, transaction_manager, request=None):
    """Get a ``sqlalchemy.orm.Session`` instance backed by a transaction.

    This function will hook the session to the transaction manager which
    will take care of committing any changes.

    - When using pyramid_tm it will automatically be committed or aborted
      depending on whether an exception is raised.

    - When using scripts you should wrap the session in a manager yourself.
      For example::

          import transaction

          engine = get_engine(settings)
          session_factory = get_session_factory(engine)
          with transaction.manager:
              dbsession = get_tm_session(session_factory, transaction.manager)

    This function may be invoked with a ``request`` kwarg, such as when
    invoked by the reified ``.dbsession`` Pyramid request attribute which is
    configured via the ``includeme`` function below. The optional
    ``request`` param is used by ``zope.sqlalchemy`` to attach a thread-local
    session to the request.
    """
    dbsession = session_factory(info={"request": request})
    zope.sqlalchemy.register(dbsession,
                             transaction_manager=transaction_manager)
    return dbsession


def includeme(config):
    """Initialize the model for a Pyramid app.

    Activate this setup using ``config.include('myapp.models')``.
    """
    settings = config.get_settings()
    settings['tm.manager_hook'] = 'pyramid_tm.explicit_manager'

    # Use ``pyramid_tm`` to hook the transaction lifecycle to the request.
    # Note: the packages ``pyramid_tm`` and ``transaction`` work together to
    # automatically close the active database session after every request.
    # If your project migrates away from ``pyramid_tm``, you may need to use a
    # Pyramid callback function to close the database session after each
    # request.
    config.include('pyramid_tm')

    # Use ``pyramid_retry`` to retry a request when transient exceptions occur.
    config.include('pyramid_retry')

    # hook to share the dbengine fixture in testing
    dbengine = settings.get('dbengine')
    if not dbengine:
        dbengine = get_engine(settings)
        check_schema_is_current(dbengine)

    session_factory = get_session_factory(dbengine)
    config.registry['dbsession_factory'] = session_factory

    # make request.dbsession available for use in Pyramid
    def dbsession(request):
        # hook to share the dbsession fixture in testing
        dbsession = request.environ.get('app.dbsession')
        if dbsession is None:
            # request.tm is the transaction manager used by pyramid_tm
            dbsession = get_tm_session(
                session_factory, request.tm, request=request
            )
        return dbsession

    config.add_request_method(dbsession, reify=True)
