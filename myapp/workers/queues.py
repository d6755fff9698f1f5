"""How many messages wait in each queue, asked of the broker.

One general question for every transport: a passive ``queue.declare``,
whose answer carries the queue's message count (RabbitMQ counts them
itself; kombu's virtual transports, Redis and the embedded filesystem
broker, count the list or the folder, every priority included).  A queue
the broker does not have holds nothing: kombu's Redis transport forgets
an empty list, and RabbitMQ has not declared a queue no one used yet.
"""
import concurrent.futures

from amqp.exceptions import NotFound

from ..celery_integration.errors import mask_secrets

#: The longest the broker may take to answer, so that a page or a scrape
#: never hangs on it.
BROKER_SECONDS = 3.0


class BrokerUnavailable(Exception):
    """The broker did not answer (the message says why, without secrets)."""


def known_queues(celery_app, consumed=()):
    """The queues worth asking about: the default one, those the ini
    declares (``task_queues``) and those workers consume."""
    names = {celery_app.conf.task_default_queue}
    names.update(queue.name for queue in celery_app.conf.task_queues or ())
    names.update(consumed)
    return sorted(name for name in names if name)


def queue_depths(celery_app, names, timeout=BROKER_SECONDS):
    """``{queue: messages waiting}``, or :class:`BrokerUnavailable` within
    ``timeout``."""
    # Not "with": leaving it would wait for a broker that hangs.
    pool = concurrent.futures.ThreadPoolExecutor(
        1, thread_name_prefix='myapp-queue-depths')
    future = pool.submit(count_messages, celery_app, names, timeout)
    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        raise BrokerUnavailable(f'no answer in {timeout:g} s') from None
    except Exception as exc:
        raise BrokerUnavailable(mask_secrets(
            f'{type(exc).__name__}: {exc}')) from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def count_messages(celery_app, names, timeout):
    with celery_app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)
        return {name: messages_in(connection, name) for name in names}


def messages_in(connection, name):
    # A channel each: RabbitMQ closes the one that asked for a queue it
    # does not have.
    channel = connection.channel()
    try:
        return channel.queue_declare(queue=name, passive=True).message_count
    except NotFound:
        return 0
    except connection.channel_errors as exc:
        if getattr(exc, 'code', None) == NotFound.code or \
                'NOT_FOUND' in str(exc):
            return 0
        raise
    finally:
        try:
            channel.close()
        except connection.connection_errors + connection.channel_errors:
            pass
