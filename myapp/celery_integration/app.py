"""The Celery application: pyramid_celery's, importable on every Python.

pyramid_celery 4.0's loader names ``configparser.SafeConfigParser`` in a class
body, and that alias was removed in Python 3.12 (pyramid_celery issue 105), so
``import pyramid_celery`` fails there.  ``ConfigParser`` is what the alias
pointed to since Python 3.2, so restoring the name is exact, not a guess.
Only this module imports pyramid_celery, and only declaring a task or
configuring the app imports this module.
"""
import configparser

if not hasattr(configparser, 'SafeConfigParser'):  # Python 3.12+
    configparser.SafeConfigParser = configparser.ConfigParser

import pyramid_celery  # noqa: E402  (needs the alias above)

#: The one Celery application, shared with pyramid_celery so that
#: ``celery -A pyramid_celery.celery_app worker --ini INI`` keeps working.
celery_app = pyramid_celery.celery_app
