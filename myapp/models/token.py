"""Who may use the app when access control is on: named tokens, each with
a role (:mod:`myapp.security`), made with ``myapp_tokens``.

Only a digest of each secret is kept: the secret is printed once, when it
is made.  A revoked token stays listed (who had access, and until when);
its name can be given to a new token.
"""
from sqlalchemy import Column, Integer, String

from .meta import Base
from .types import UTCDateTime, utcnow

VIEWER = 'viewer'
OPERATOR = 'operator'
ROLES = (VIEWER, OPERATOR)


class AccessToken(Base):
    __tablename__ = 'access_tokens'

    id = Column(Integer, primary_key=True)
    #: Who holds it (a person or a program): also the name to sign in with.
    name = Column(String(100), nullable=False, unique=True)
    role = Column(String(16), nullable=False)
    #: sha256 of the secret, hex.  Secrets are 256 random bits: a plain
    #: digest cannot be reversed, and it is what a request is looked up by.
    secret_hash = Column(String(64), nullable=False, unique=True)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    revoked_at = Column(UTCDateTime)

    def __repr__(self):
        return f'<AccessToken {self.name} {self.role}>'
