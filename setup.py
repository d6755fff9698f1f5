import os

from setuptools import find_namespace_packages, setup

here = os.path.abspath(os.path.dirname(__file__))
with open(os.path.join(here, 'README.rst')) as f:
    README = f.read()

requires = [
    'alembic',
    'celery>=5.3',
    'ephem',  # Celery's solar schedules
    'kombu>=5.3',
    'pastedeploy',
    'prometheus_client',  # GET /metrics (myapp.monitoring)
    'plaster_pastedeploy',
    'pyramid>=2.0',
    'pyramid_celery>=4.0',
    'pyramid_jinja2',
    'pyramid_retry',
    'pyramid_tm',
    'pytz',
    # Pyramid imports pkg_resources, which setuptools 82 removed.  Pyramid
    # 2.1 says so itself (setuptools<82); 2.0.x does not, and Python 3.12+
    # venvs come without setuptools, so pip would pick the newest.  From
    # 80.9 on, importing it prints a two-line deprecation warning in every
    # command (pserve, pceleryd...), which the one-line errors would drown in.
    'setuptools<80.9',
    'sqlalchemy>=2.0',
    'transaction',
    'waitress',
    'zope.sqlalchemy',
]

production_requires = [
    'psycopg[binary]',  # PostgreSQL: app database and results
    'redis',            # Redis: broker or results
]

tests_require = [
    'pytest>=7',
    'hypothesis',  # tests/test_fuzz.py
    'pytest-cov',
    'schemathesis',  # tests/test_openapi.py: the API against its document
    'selenium',  # tests/test_browser.py, with Chromium and chromedriver
    'webtest',
] + production_requires

setup(
    name='myapp',
    version='0.1',
    description='Celery inside Pyramid: background and periodic jobs, '
                'configured by one ini file',
    long_description=README,
    classifiers=[
        'Programming Language :: Python',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3 :: Only',
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.12',
        'Programming Language :: Python :: 3.13',
        'Programming Language :: Python :: Implementation :: CPython',
        'Framework :: Pyramid',
        'Topic :: Internet :: WWW/HTTP',
        'Topic :: Internet :: WWW/HTTP :: WSGI :: Application',
    ],
    python_requires='>=3.11',  # .ci/run tests each CPython from 3.11 up
    # Namespace packages too: alembic/, templates/ and static/ hold no
    # __init__.py but must be installed.
    packages=find_namespace_packages(include=['myapp', 'myapp.*']),
    include_package_data=True,
    zip_safe=False,
    extras_require={
        'testing': tests_require,
        'production': production_requires,
    },
    install_requires=requires,
    entry_points={
        'paste.app_factory': [
            'main = myapp:main',
        ],
        'console_scripts': [
            'initialize_myapp_db = myapp.scripts.initialize_db:main',
            'pceleryd = myapp.celery_integration.commands:pceleryd',
            'pcelerybeat = myapp.celery_integration.commands:pcelerybeat',
            'myapp_tokens = myapp.scripts.tokens:main',
            # Pyramid's commands, with the ini checked first (one line for
            # every mistake in it): installed after Pyramid, these win.
            'pserve = myapp.scripts.pyramid_commands:pserve',
            'pshell = myapp.scripts.pyramid_commands:pshell',
        ],
    },
)
