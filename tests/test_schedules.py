"""[celerybeat:NAME] sections: parsing, start-up errors, words, time zones."""
import datetime
import os
import shutil
import textwrap
from zoneinfo import ZoneInfo

import pytest
from celery import Celery
from celery.schedules import crontab, solar
from pyramid.paster import get_app

from myapp.celery_integration import StartupError, celery_app
from myapp.celery_integration.schedule_info import describe, next_run
from myapp.celery_integration.settings import ConfigError, load_celery_settings

from .support import PROJECT, write_ini

UTC = datetime.timezone.utc


def beat_schedule(tmp_path, text):
    path = tmp_path / 'app.ini'
    path.write_text(textwrap.dedent(text))
    return load_celery_settings(str(path), environ={}).get('beat_schedule')


def job(tmp_path, kind, schedule, **extra):
    lines = ''.join(f'{key} = {value}\n' for key, value in extra.items())
    entries = beat_schedule(tmp_path, f'[celerybeat:x]\ntask = myapp.tasks.add'
                            f'\ntype = {kind}\nschedule = {schedule}\n{lines}')
    return entries['x']


# -- parsing -----------------------------------------------------------------

@pytest.mark.parametrize('kind, schedule, expected', [
    ('crontab', '{"minute": "0", "hour": "8", "day_of_month": "1"}',
     crontab(minute='0', hour='8', day_of_month='1')),
    ('crontab', '{"minute": "*/15", "day_of_week": "mon-fri"}',
     crontab(minute='*/15', day_of_week='mon-fri')),
    ('timedelta', '{"seconds": 30}', datetime.timedelta(seconds=30)),
    ('timedelta', '{"hours": 2, "minutes": 30}',
     datetime.timedelta(hours=2, minutes=30)),
    ('integer', '30', 30),
    ('solar', '{"event": "sunset", "latitude": 35.68, "longitude": 139.69}',
     solar('sunset', 35.68, 139.69)),
])
def test_each_schedule_type_parses(tmp_path, kind, schedule, expected):
    entry = job(tmp_path, kind, schedule, args='[5, 10]',
                kwargs='{}', options='{"queue": "celery"}')
    assert entry == {'task': 'myapp.tasks.add', 'schedule': expected,
                     'args': [5, 10], 'kwargs': {},
                     'options': {'queue': 'celery'}}


def test_the_seed_examples_parse(tmp_path):
    entries = beat_schedule(tmp_path, """
        [celerybeat:add_every_30_seconds]
        task = myapp.tasks.add
        type = timedelta
        schedule = {"seconds": 30}
        args = [5, 10]

        [celerybeat:first_of_the_month]
        task = myapp.tasks.xsum
        type = crontab
        schedule = {"minute": "0", "hour": "8", "day_of_month": "1"}
        args = [[1, 2, 3]]
        """)
    assert entries['add_every_30_seconds']['schedule'] == \
        datetime.timedelta(seconds=30)
    assert entries['first_of_the_month']['schedule'] == \
        crontab(minute=0, hour=8, day_of_month=1)
    assert entries['first_of_the_month']['args'] == [[1, 2, 3]]


def test_enabled_false_keeps_the_job_out_of_beat_schedule(tmp_path):
    entries = beat_schedule(tmp_path, """
        [celerybeat:off]
        task = myapp.tasks.add
        type = integer
        schedule = 5
        enabled = false

        [celerybeat:on]
        task = myapp.tasks.add
        type = integer
        schedule = 5
        enabled = true
        """)
    assert list(entries) == ['on']


@pytest.mark.parametrize('line, key, problem', [
    ('schedule = {"seconds": }', 'schedule', 'not valid JSON'),
    ('type = weekly', 'type', 'unknown schedule type "weekly"; use one of '
     'crontab, timedelta, integer, solar'),
    ('schedule = {"minute": "0", "hour": "25"}', 'schedule',
     'not a valid crontab schedule: hour "25": Invalid end range: 25 > 23'),
    ('taks = myapp.tasks.add', 'taks', 'unknown key; did you mean "task"?'),
    # pyramid_celery's documented example: accepted, then beat failed every
    # tick after the first (UNIQUE constraint failed: jobs.id).
    ('options = {"task_id": "4445"}', 'options',
     '"task_id" cannot be given to a periodic job: every run needs an id of '
     'its own'),
    ('options = {"eta": "2026-01-01T08:00:00"}', 'options',
     '"eta" cannot be given to a periodic job'),
    ('options = {"queu": "celery"}', 'options',
     '"queu" is not an option of a periodic job; did you mean "queue"?'),
])
def test_a_wrong_section_names_file_section_and_key(tmp_path, line, key,
                                                    problem):
    items = {'task': 'myapp.tasks.add', 'type': 'crontab',
             'schedule': '{"minute": "0"}'}
    name = line.split(' = ')[0]
    items[name] = line.split(' = ', 1)[1]
    text = '[celerybeat:x]\n' + ''.join(f'{k} = {v}\n'
                                        for k, v in items.items())
    with pytest.raises(ConfigError) as info:
        beat_schedule(tmp_path, text)
    assert str(info.value).startswith(
        f'{tmp_path}/app.ini, section [celerybeat:x], key "{key}": {problem}')


# -- start-up checks, through the real app ----------------------------------

@pytest.fixture(scope='module')
def app_directory(tmp_path_factory, initialize_db):
    """One initialised database; each test writes its own ini beside it."""
    directory = tmp_path_factory.mktemp('schedules')
    initialize_db(write_ini(directory))
    return directory


def start_app(directory, **ini):
    path = write_ini(directory, **ini)
    return path, get_app(path)


def startup_error(directory, **ini):
    with pytest.raises(StartupError) as info:
        start_app(directory, **ini)
    return str(info.value)


def test_an_unregistered_task_stops_start_up(app_directory):
    error = startup_error(app_directory, extra="""
        [celerybeat:x]
        task = myapp.tasks.ad
        type = integer
        schedule = 5
        """)
    assert error.startswith(
        f'error: {app_directory}/test.ini, section [celerybeat:x], key '
        '"task": no task named "myapp.tasks.ad" is registered')
    assert 'did you mean "myapp.tasks.add"?' in error


def test_arguments_that_do_not_fit_the_task_stop_start_up(app_directory):
    error = startup_error(app_directory, extra="""
        [celerybeat:x]
        task = myapp.tasks.add
        type = integer
        schedule = 5
        args = [1, 2, 3]
        """)
    assert error.startswith(
        f'error: {app_directory}/test.ini, section [celerybeat:x], key '
        '"args": the arguments do not fit myapp.tasks.add')


def test_an_unknown_time_zone_stops_start_up_with_close_names(app_directory):
    error = startup_error(app_directory, celery='timezone = Europe/Pari')
    assert error.startswith(
        f'error: {app_directory}/test.ini, section [celery], key "timezone":'
        ' unknown time zone "Europe/Pari"')
    assert '"Europe/Paris"' in error


def test_the_shipped_development_ini_runs_its_periodic_jobs(tmp_path,
                                                            initialize_db):
    # A copy, so that its var/ (database, broker folders) is the test's own.
    ini = shutil.copy(os.path.join(PROJECT, 'development.ini'), tmp_path)
    initialize_db(ini)
    get_app(ini)  # checks each job's task and arguments
    zone = celery_app.conf.timezone
    assert zone == 'Asia/Tokyo'
    described = {name: describe(entry['schedule'], zone)
                 for name, entry in celery_app.conf.beat_schedule.items()}
    # Seed 002's two examples, and myapp's sweeper and history purge.
    assert described == {
        'add_every_30_seconds': 'every 30 seconds',
        'xsum_on_the_first_of_the_month':
            'at 08:00 on day 1 of the month, Asia/Tokyo',
        'send_unsent_jobs': 'every 30 seconds',
        'purge_job_history': 'at 03:30 every day, Asia/Tokyo',
    }


def readme_examples():
    """The ini block under "One example per type::" in README.rst."""
    with open(os.path.join(PROJECT, 'README.rst')) as handle:
        text = handle.read()
    block = text.split('One example per type::\n', 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith('        '):
            break
        lines.append(line)
    return textwrap.dedent('\n'.join(lines))


def test_the_readme_examples_start(app_directory):
    start_app(app_directory, extra=readme_examples())
    zone = celery_app.conf.timezone or 'UTC'
    described = {name: describe(entry['schedule'], zone)
                 for name, entry in celery_app.conf.beat_schedule.items()}
    assert described == {
        'first_of_the_month': 'at 08:00 on day 1 of the month, UTC',
        'add_every_30_seconds': 'every 30 seconds',
        'add_every_5_minutes': 'every 5 minutes',
        'sum_at_sunset_in_tokyo': 'at sunset at 35.68, 139.69',
        'christmas_morning': 'once at 2026-12-25 08:00, UTC',
    }


def test_configuring_again_changes_the_time_zone(app_directory):
    start_app(app_directory, celery='timezone = UTC')
    assert celery_app.timezone == ZoneInfo('UTC')
    start_app(app_directory, celery='timezone = Europe/Paris')
    assert celery_app.timezone == ZoneInfo('Europe/Paris')


# -- descriptions ------------------------------------------------------------

@pytest.mark.parametrize('fields, expected', [
    ({'minute': '0', 'hour': '8', 'day_of_month': '1'},
     'at 08:00 on day 1 of the month, Asia/Tokyo'),
    ({'minute': '0', 'hour': '8', 'day_of_week': 'mon'},
     'at 08:00 on Monday, Asia/Tokyo'),
    ({'minute': '*/15'}, 'every 15 minutes'),
    ({'minute': '0'}, 'every hour'),
    ({'minute': '0', 'hour': '*/2'}, 'every 2 hours'),
    ({}, 'every minute'),
    ({'minute': '30', 'hour': '8,17'},
     'at 08:30 and 17:30 every day, Asia/Tokyo'),
    ({'minute': '*/15', 'day_of_week': '1-5'},
     'every 15 minutes on Monday to Friday, Asia/Tokyo'),
    ({'minute': '5-59/15'},
     'every hour at :05, :20, :35 and :50, Asia/Tokyo'),
    ({'minute': '0', 'hour': '9', 'day_of_month': '1,15',
      'month_of_year': '*/3'},
     'at 09:00 on days 1 and 15 of the month in January, April, July and '
     'October, Asia/Tokyo'),
    ({'minute': '0', 'hour': '9', 'month_of_year': '7'},
     'at 09:00 every day in July, Asia/Tokyo'),
    # "every 5 hours" would be wrong: 20:00 is followed by 00:00.
    ({'minute': '0', 'hour': '*/5'}, 'cron "0 */5 * * *", Asia/Tokyo'),
    ({'minute': '0', 'hour': '8-17'}, 'cron "0 8-17 * * *", Asia/Tokyo'),
    # Celery needs both day fields to match, cron either: no short phrase.
    ({'minute': '0', 'hour': '8', 'day_of_month': '1-7', 'day_of_week': '1'},
     'cron "0 8 1-7 * 1", Asia/Tokyo'),
])
def test_crontab_in_words(fields, expected):
    assert describe(crontab(**fields), 'Asia/Tokyo') == expected


@pytest.mark.parametrize('schedule, expected', [
    (30, 'every 30 seconds'),
    (1, 'every second'),
    (0.5, 'every 0.5 seconds'),
    (datetime.timedelta(seconds=90), 'every 90 seconds'),
    (datetime.timedelta(hours=2), 'every 2 hours'),
    (datetime.timedelta(days=1), 'every day'),
    (solar('sunset', 35.68, 139.69), 'at sunset at 35.68, 139.69'),
    (solar('dawn_civil', -33.87, 151.21), 'at civil dawn at -33.87, 151.21'),
])
def test_other_schedules_in_words(schedule, expected):
    assert describe(schedule, 'Europe/Paris') == expected


def test_crontab_without_a_time_zone_is_utc():
    assert describe(crontab(minute=0, hour=8), None) == \
        'at 08:00 every day, UTC'


# -- next run and time zones -------------------------------------------------

def celery_in(zone):
    """A Celery app configured as the ini's ``[celery] timezone`` does."""
    app = Celery('schedules', set_as_current=False)
    app.conf.timezone, app.conf.enable_utc = zone, True
    return app


def fires_as_beat_does(schedule, zone, first, count):
    """Each fire time, computed right after the previous run."""
    app = celery_in(zone)
    fires = [first]
    while len(fires) < count:
        fires.append(next_run(schedule, fires[-1], fires[-1], app=app))
    return fires


@pytest.mark.parametrize('zone, first_day, utc_hours', [
    # Paris moves to summer time on 31 March 2024 and back on 27 October.
    ('Europe/Paris', datetime.date(2024, 3, 29), [7, 7, 6, 6]),
    ('Europe/Paris', datetime.date(2024, 10, 25), [6, 6, 7, 7]),
    # New York moves to summer time on 10 March 2024.
    ('America/New_York', datetime.date(2024, 3, 8), [13, 13, 12, 12]),
])
def test_crontab_keeps_local_wall_time_across_daylight_saving(
        zone, first_day, utc_hours):
    first = datetime.datetime.combine(first_day, datetime.time(8),
                                      ZoneInfo(zone))
    fires = fires_as_beat_does(crontab(minute=0, hour=8), zone, first, 4)
    assert [fire.date() - first_day for fire in fires] == \
        [datetime.timedelta(days=day) for day in range(4)]
    assert all((fire.hour, fire.minute) == (8, 0) for fire in fires)
    assert all(fire.tzinfo == ZoneInfo(zone) for fire in fires)
    assert [fire.astimezone(UTC).hour for fire in fires] == utc_hours


@pytest.mark.parametrize('first, expected', [
    # 02:30 does not exist on 31 March: that once, it runs at 03:30.
    ('2024-03-30 02:30', ['2024-03-31 03:30+02:00', '2024-04-01 02:30+02:00']),
    # 02:30 happens twice on 27 October: it runs once.
    ('2024-10-26 02:30', ['2024-10-27 02:30+02:00', '2024-10-28 02:30+01:00']),
])
def test_a_wall_time_skipped_or_repeated_by_the_change(first, expected):
    paris = ZoneInfo('Europe/Paris')
    first = datetime.datetime.fromisoformat(first).replace(tzinfo=paris)
    fires = fires_as_beat_does(crontab(minute=30, hour=2), 'Europe/Paris',
                               first, 3)
    assert [fire.isoformat(' ', 'minutes') for fire in fires[1:]] == expected


def test_crontab_on_the_first_of_the_month_in_tokyo():
    # Tokyo is 9 hours ahead: 08:00 on the 1st is 23:00 UTC the day before.
    now = datetime.datetime(2024, 5, 20, 12, tzinfo=UTC)
    fire = next_run(crontab(minute=0, hour=8, day_of_month=1), now, now,
                    app=celery_in('Asia/Tokyo'))
    assert fire.astimezone(UTC) == datetime.datetime(2024, 5, 31, 23,
                                                     tzinfo=UTC)
    assert fire.tzinfo == ZoneInfo('Asia/Tokyo')


@pytest.mark.parametrize('schedule', [30, datetime.timedelta(seconds=30)])
def test_an_interval_runs_that_long_after_the_last_run(schedule):
    now = datetime.datetime(2024, 3, 31, 0, 59, 50, tzinfo=UTC)
    app = celery_in('Europe/Paris')
    last = now - datetime.timedelta(seconds=10)
    assert next_run(schedule, last, now, app=app) == \
        now + datetime.timedelta(seconds=20)
    # Never run: beat counts from now.
    assert next_run(schedule, None, now, app=app) == \
        now + datetime.timedelta(seconds=30)
    # Overdue: beat sends it at once.
    overdue = now - datetime.timedelta(minutes=5)
    assert next_run(schedule, overdue, now, app=app) == now


def test_solar_next_run_is_the_next_sunset():
    # Sunset in Tokyo on 1 June 2024 is at about 18:52 local time.
    tokyo = ZoneInfo('Asia/Tokyo')
    now = datetime.datetime(2024, 6, 1, 12, tzinfo=tokyo)
    fire = next_run(solar('sunset', 35.68, 139.69), now, now,
                    app=celery_in('Asia/Tokyo'))
    assert datetime.datetime(2024, 6, 1, 18, 45, tzinfo=tokyo) < fire < \
        datetime.datetime(2024, 6, 1, 19, tzinfo=tokyo)


def test_next_run_leaves_the_configured_schedule_alone():
    schedule = crontab(minute=0, hour=8)
    now = datetime.datetime(2024, 3, 31, tzinfo=UTC)
    next_run(schedule, now, now, app=celery_in('Europe/Paris'))
    assert schedule.nowfun is None and schedule._app is None


# -- zones of their own, daylight saving, clocked ----------------------------

PARIS = ZoneInfo('Europe/Paris')


def fires_during(schedule, start, hours=40, step_seconds=20):
    """The local times (Paris) at which beat, ticking every ``step_seconds``
    from ``start`` and counting from its last send as it does, sends."""
    now = [start]
    schedule.nowfun = lambda: now[0]
    last_run = start
    fired = []
    while now[0] < start + datetime.timedelta(hours=hours):
        due, _ = schedule.is_due(last_run)
        if due:
            fired.append(now[0].astimezone(PARIS).strftime('%m-%d %H:%M %Z'))
            last_run = now[0]
        now[0] += datetime.timedelta(seconds=step_seconds)
    return fired


def paris_0230(tmp_path):
    """A crontab at 02:30 in Paris, in an app whose zone is Tokyo's."""
    app = Celery(set_as_current=False)
    app.conf.timezone = 'Asia/Tokyo'
    entry = job(tmp_path, 'crontab', '{"minute": "30", "hour": "2"}',
                timezone='Europe/Paris')
    entry['schedule'].app = app
    return entry['schedule']


def test_a_time_the_spring_day_lacks_runs_once_an_hour_later(tmp_path):
    # 2026-03-29: Paris clocks go from 02:00 to 03:00.
    fired = fires_during(paris_0230(tmp_path),
                         datetime.datetime(2026, 3, 28, 12, tzinfo=UTC))
    assert fired == ['03-29 03:30 CEST', '03-30 02:30 CEST']


def test_a_time_the_autumn_day_has_twice_runs_once(tmp_path):
    # 2026-10-25: Paris clocks go from 03:00 back to 02:00.
    fired = fires_during(paris_0230(tmp_path),
                         datetime.datetime(2026, 10, 24, 12, tzinfo=UTC))
    assert fired == ['10-25 02:30 CEST', '10-26 02:30 CET']


def test_a_crontab_is_read_in_its_own_zone_not_the_apps(tmp_path):
    fired = fires_during(paris_0230(tmp_path),
                         datetime.datetime(2026, 6, 1, 12, tzinfo=UTC))
    assert fired == ['06-02 02:30 CEST', '06-03 02:30 CEST']


def test_a_clocked_time_without_offset_is_read_in_its_zone(tmp_path):
    entry = job(tmp_path, 'clocked', '{"at": "2026-12-24T08:00:00"}',
                timezone='Europe/Paris')
    assert entry['schedule'].at == datetime.datetime(2026, 12, 24, 7,
                                                     tzinfo=UTC)
    fired = fires_during(entry['schedule'],
                         datetime.datetime(2026, 12, 23, 12, tzinfo=UTC),
                         hours=72)
    assert fired == ['12-24 08:00 CET']


@pytest.mark.parametrize('text, problem', [
    ('[celerybeat:x]\ntask = t\ntype = crontab\nschedule = {"hour": "2"}\n'
     'timezone = Europe/Pariss\n',
     'unknown time zone "Europe/Pariss"; did you mean "Europe/Paris"'),
    ('[celerybeat:x]\ntask = t\ntype = clocked\nschedule = {"at": "soon"}\n',
     '"at": "soon" is not an ISO 8601 time'),
    ('[celerybeat:x]\ntask = t\ntype = clocked\nschedule = {"when": 1}\n',
     'unknown clocked field "when"'),
])
def test_zone_and_clocked_mistakes_name_the_key(tmp_path, text, problem):
    with pytest.raises(ConfigError, match=problem.replace('(', r'\(')):
        beat_schedule(tmp_path, text)
