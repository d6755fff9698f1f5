"""What a load balancer or a monitoring system asks: ``GET /health`` and
``GET /metrics``.

``config.include('myapp.monitoring')`` adds the views on the routes of
:mod:`myapp.routes`, and the app's own Prometheus registry
(:mod:`.metrics`).  ``monitoring.open`` in ``[app:main]`` (default
``true``) keeps them open to anyone, as a load balancer's probe needs;
``false`` asks for a token (a viewer's is enough) when access control is
on.
"""
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.settings import asbool

from ..security import VIEW

OPEN_SETTING = 'monitoring.open'


def includeme(config):
    # Here, not above: it loads Celery's app, which importing this
    # package must not.
    from .metrics import PROMETHEUS_REGISTRY, prometheus_registry

    settings = config.get_settings()
    permission = NO_PERMISSION_REQUIRED \
        if asbool(settings.get(OPEN_SETTING, True)) else VIEW
    config.add_view('.health.health', route_name='health',
                    request_method='GET', renderer='json',
                    permission=permission)
    config.registry[PROMETHEUS_REGISTRY] = prometheus_registry(
        config.registry)
    config.add_view('.metrics.metrics', route_name='metrics',
                    request_method='GET', permission=permission)
