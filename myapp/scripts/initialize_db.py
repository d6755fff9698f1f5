"""``initialize_myapp_db INI``: create or upgrade the database (idempotent)."""
import argparse
import os
import sys

import sqlalchemy.exc
from alembic import command
from alembic.config import Config


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='initialize_myapp_db',
        description='Create the database, or upgrade it to the current '
                    'schema. Safe to run again.')
    parser.add_argument('config_uri', help='the ini file, e.g. development.ini')
    return parser.parse_args(argv[1:])


def main(argv=sys.argv):
    args = parse_args(argv)
    if not os.path.isfile(args.config_uri):
        sys.exit(f'error: {args.config_uri}: no such file')
    config = Config(args.config_uri)
    if not config.get_main_option('script_location'):
        sys.exit(f'error: {args.config_uri}, section [alembic], key '
                 '"script_location": missing; add "script_location = '
                 'myapp:alembic"')
    url = prepare_sqlite_folder(args.config_uri)
    try:
        command.upgrade(config, 'head')
    except sqlalchemy.exc.OperationalError as exc:
        sys.exit(f'error: cannot connect to the database {url} (from '
                 f'{args.config_uri}): {exc.orig}')


def prepare_sqlite_folder(config_uri):
    """SQLite creates the file, not the folder (``var/`` on a fresh clone).
    Returns the database URL, its password hidden."""
    from pyramid.paster import get_appsettings

    from myapp.models import get_engine

    engine = get_engine(get_appsettings(config_uri))
    database = engine.url.database
    if engine.url.get_backend_name() == 'sqlite' and database \
            and database != ':memory:':
        os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
    engine.dispose()
    return engine.url.render_as_string(hide_password=True)
