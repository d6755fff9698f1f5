"""Durations set in ``[app:main]`` (``jobs.lease_seconds``,
``jobs.resend_unstarted_after``), read once into the registry."""
import datetime

from ..celery_integration import ConfigError


def configure_seconds(config, key, default, minimum):
    """Store ``key`` (seconds, at least ``minimum``) in the registry as a
    ``timedelta``; a bad value is one line naming the key."""
    settings = config.get_settings()
    value = settings.get(key)
    if value is None:
        config.registry[key] = default
        return
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is None or not seconds >= minimum:
        raise ConfigError(
            settings.get('__file__', 'the ini file'), 'app:main', key,
            f'"{value}" is not a number of seconds of at least {minimum}',
            f'the default is {default.total_seconds():g}')
    config.registry[key] = datetime.timedelta(seconds=seconds)
