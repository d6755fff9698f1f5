"""Access tokens: made, found, listed and revoked (``myapp_tokens`` and
:mod:`myapp.security` use these; the table is
:class:`myapp.models.AccessToken`)."""
import hashlib
import hmac
import re
import secrets

from sqlalchemy import select

from .models.token import ROLES, AccessToken
from .models.types import utcnow

#: A token's name: it is shown in logs, lists and the pages.
NAME = re.compile(r'[A-Za-z0-9_.@-]{1,100}', re.ASCII)


class TokenError(Exception):
    """A name, role or token that cannot be used, and why."""


def digest(secret):
    return hashlib.sha256(secret.encode('utf-8', 'surrogatepass')).hexdigest()


def create(dbsession, name, role):
    """Make the token ``name`` with ``role`` and return its secret, the one
    time it is known.  A revoked token's name may be used again."""
    if not NAME.fullmatch(name or ''):
        raise TokenError(f'"{name}" is not a token name: 1 to 100 letters, '
                         'digits or "_.@-"')
    if role not in ROLES:
        raise TokenError(f'"{role}" is not a role: use {" or ".join(ROLES)}')
    token = by_name(dbsession, name)
    if token is not None and token.revoked_at is None:
        raise TokenError(f'a token named "{name}" exists: revoke it first')
    secret = secrets.token_urlsafe(32)
    if token is None:
        token = AccessToken(name=name)
        dbsession.add(token)
    token.role, token.secret_hash = role, digest(secret)
    token.created_at, token.revoked_at = utcnow(), None
    dbsession.flush()
    return secret


def revoke(dbsession, name):
    token = by_name(dbsession, name)
    if token is None or token.revoked_at is not None:
        raise TokenError(f'no token named "{name}" is in use')
    token.revoked_at = utcnow()
    dbsession.flush()


def by_name(dbsession, name):
    return dbsession.scalar(select(AccessToken)
                            .where(AccessToken.name == name))


def by_secret(dbsession, secret):
    """The token in use whose secret this is, or None."""
    token = dbsession.scalar(select(AccessToken).where(
        AccessToken.secret_hash == digest(secret),
        AccessToken.revoked_at.is_(None)))
    # The look-up was by digest; compare again in constant time.
    if token is not None and hmac.compare_digest(token.secret_hash,
                                                 digest(secret)):
        return token
    return None


def all_tokens(dbsession):
    return dbsession.scalars(select(AccessToken)
                             .order_by(AccessToken.name)).all()
