"""``myapp_tokens INI create --role viewer|operator NAME``, ``list`` and
``revoke NAME``: the access tokens of the API and the pages.

``create`` prints the new token's secret as its last line, the only time
it is shown (only its digest is kept).  Reads only the app database of the
ini: no broker is needed.
"""
import argparse
import os
import sys

import transaction
from pyramid.paster import get_appsettings

from ..celery_integration.errors import ConfigError
from ..models import get_engine, get_session_factory, get_tm_session
from ..models.schema import check_schema_is_current
from ..models.token import ROLES
from .. import tokens


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='myapp_tokens',
        description='Make, list and revoke the tokens of the API and the '
                    'pages (access control: auth.enabled in the ini).')
    parser.add_argument('config_uri', help='the ini file, e.g. '
                                           'production.ini')
    commands = parser.add_subparsers(dest='command', required=True)
    create = commands.add_parser('create', help='make a token; its secret '
                                 'is the last line printed')
    create.add_argument('--role', required=True, choices=ROLES)
    create.add_argument('name')
    commands.add_parser('list', help='every token, revoked ones too')
    revoke = commands.add_parser('revoke', help='stop a token at once')
    revoke.add_argument('name')
    return parser.parse_args(argv[1:])


def main(argv=sys.argv):
    args = parse_args(argv)
    if not os.path.isfile(args.config_uri):
        sys.exit(f'error: {args.config_uri}: no such file')
    try:
        engine = get_engine(get_appsettings(args.config_uri))
        check_schema_is_current(engine, args.config_uri)
    except (ConfigError, KeyError) as exc:
        sys.exit(f'error: {args.config_uri}: {exc}')
    manager = transaction.TransactionManager(explicit=True)
    try:
        with manager:
            dbsession = get_tm_session(get_session_factory(engine), manager)
            COMMANDS[args.command](dbsession, args)
    except tokens.TokenError as exc:
        sys.exit(f'error: {exc}')
    finally:
        engine.dispose()


def create(dbsession, args):
    secret = tokens.create(dbsession, args.name, args.role)
    print(f'token "{args.name}" made, role {args.role}; its secret, shown '
          'this once (Authorization: Bearer SECRET, or sign in with the '
          'name and the secret):')
    print(secret)


def list_tokens(dbsession, args):
    for token in tokens.all_tokens(dbsession):
        state = 'in use' if token.revoked_at is None else \
            f'revoked {token.revoked_at:%Y-%m-%d %H:%M:%S} UTC'
        print(f'{token.name}\t{token.role}\tmade '
              f'{token.created_at:%Y-%m-%d %H:%M:%S} UTC\t{state}')


def revoke(dbsession, args):
    tokens.revoke(dbsession, args.name)
    print(f'token "{args.name}" revoked: its requests are refused from now')


COMMANDS = {'create': create, 'list': list_tokens, 'revoke': revoke}
