"""Workaround for a defect of kombu's Redis transport (kombu 5.7.0, the
newest release): a worker exits when the Redis broker goes away under load.

What happens (reproduced by tests/test_faults_broker.py, about 1 run in 4
to 6 with 20 jobs a second and late acks): the broker connection drops, and
Celery's consumer (``on_connection_error_after_connected``) first
``collect()``s the connection, then ``close()``s it.

1. ``collect()`` closes the default channel.  kombu's ``Channel.close``
   first deletes the channel's fanout bindings (the pidbox, gossip) with a
   Redis command, which fails (the server is down) *before* the channel is
   marked closed; kombu swallows that connection error, then detaches the
   transport from its connection (``transport.client = None``).
2. ``close()`` closes the same channel again.  Still "open", it now drops
   its connection pools and restores its unacknowledged messages
   (``QoS.restore_unacked_once``), which needs a new pool, whose parameters
   are read from ``transport.client``, now None:
   ``AttributeError: 'NoneType' object has no attribute 'hostname'``.
   That is not a connection error, so nothing catches it: the consumer
   dies with "Unrecoverable error" and the worker exits instead of
   reconnecting.  (The same AttributeError in ``_connparams`` was reported
   as kombu issues 582 and 970, from other callers.)

The workaround: a channel whose transport is detached raises a Redis
``ConnectionError`` when it needs a new pool, which is the truth (it has
no connection any more) and which kombu and Celery handle: the close goes
on and the worker reconnects.  The messages it could not restore stay in
Redis's unacked index, from which kombu restores them after the
``visibility_timeout`` (if the Redis data survived at all).  Remove it once
a kombu release fixes ``Channel.close``.
"""
import functools


def guard_redis_channel_close():
    """Install the workaround (once; nothing without redis-py)."""
    from kombu.transport import redis as transport

    if transport.redis is None or \
            getattr(transport.Channel._connparams, 'myapp_guarded', False):
        return
    original = transport.Channel._connparams
    connection_error = transport.redis.exceptions.ConnectionError

    @functools.wraps(original)
    def _connparams(self, *args, **kwargs):
        kombu_transport = self.connection
        if kombu_transport is None or kombu_transport.client is None:
            raise connection_error(
                'the Redis channel is closed: its connection is gone')
        return original(self, *args, **kwargs)

    _connparams.myapp_guarded = True
    transport.Channel._connparams = _connparams
