"""``GET /health``: can the app reach its database, its broker and its
result backend?  200 when all three answer, 503 when one does not, with
what each said and how long it took::

    {"status": "ok", "checks": {
        "database": {"ok": true, "ms": 0.9},
        "broker": {"ok": true, "ms": 2.1},
        "result_backend": {"ok": true, "ms": 1.4}}}

Each check is bounded (:data:`CHECK_SECONDS`), so a server that accepts
connections and never answers makes a 503, not a hung probe; the checks
run side by side.  Errors are shown without passwords.
"""
import concurrent.futures
import time

from sqlalchemy import text

from ..celery_integration import celery_app
from ..celery_integration.errors import mask_secrets

#: The longest a check may take before it counts as failed.
CHECK_SECONDS = 3.0


def check_database(request):
    engine = request.registry['dbsession_factory'].kw['bind']
    with engine.connect() as connection:
        connection.execute(text('SELECT 1'))


def check_broker(request):
    with celery_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=CHECK_SECONDS)


def check_result_backend(request):
    """A read of a result that does not exist: what ``AsyncResult.state``
    costs, on any backend (a database, Redis...)."""
    backend = celery_app.backend
    if hasattr(backend, 'client') and hasattr(backend.client, 'ping'):
        backend.client.ping()  # Redis: a read would not tell a refusal
        return
    backend.get_task_meta('myapp-health-check')


CHECKS = {'database': check_database, 'broker': check_broker,
          'result_backend': check_result_backend}


def run_check(check, request):
    started = time.monotonic()
    try:
        check(request)
    except Exception as exc:
        return {'ok': False, 'error': mask_secrets(
            f'{type(exc).__name__}: {exc}'),
            'ms': milliseconds_since(started)}
    return {'ok': True, 'ms': milliseconds_since(started)}


def milliseconds_since(started):
    return round((time.monotonic() - started) * 1000, 1)


def health(request):
    # Not "with": leaving it would wait for a check that hangs.
    pool = concurrent.futures.ThreadPoolExecutor(
        len(CHECKS), thread_name_prefix='myapp-health')
    futures = {name: pool.submit(run_check, check, request)
               for name, check in CHECKS.items()}
    deadline = time.monotonic() + CHECK_SECONDS
    results = {}
    for name, future in futures.items():
        try:
            results[name] = future.result(
                timeout=max(deadline - time.monotonic(), 0))
        except concurrent.futures.TimeoutError:
            results[name] = {'ok': False, 'error': 'no answer in '
                             f'{CHECK_SECONDS:g} s',
                             'ms': CHECK_SECONDS * 1000}
    pool.shutdown(wait=False, cancel_futures=True)
    ok = all(result['ok'] for result in results.values())
    request.response.status = 200 if ok else 503
    request.response.cache_control = 'no-store'
    return {'status': 'ok' if ok else 'failing', 'checks': results}
