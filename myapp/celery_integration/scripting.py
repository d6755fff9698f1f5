"""A Pyramid request outside HTTP, with a transaction of its own.

What a view gets from pyramid_tm, for code that runs outside a web request
(beat's scheduler, scripts, tests): ``request.tm``, an explicit
transaction manager, and whatever request methods the app adds
(``request.dbsession``).  A task sent inside it (a :class:`.PyramidTask`)
is recorded in it and sent when it commits.
"""
import contextlib

import transaction
from pyramid.scripting import prepare


@contextlib.contextmanager
def request_in_transaction(registry):
    """A request of ``registry`` whose transaction commits when the block
    ends and aborts if it raises; the request is closed afterwards."""
    env = prepare(registry=registry)
    request = env['request']
    request.tm = transaction.TransactionManager(explicit=True)
    try:
        with request.tm:
            yield request
    finally:
        env['closer']()
