"""Periodic jobs in words, and when beat will next run them.

:func:`describe` turns a ``beat_schedule`` entry's schedule into a phrase
("every 30 seconds", "at 08:00 on day 1 of the month, Asia/Tokyo").
Phrases are built from the values Celery expanded, so they cannot disagree
with what beat does; a crontab with no plain phrasing is shown as its cron
text instead.

:func:`next_run` asks Celery's own schedule (``is_due``), in the app's time
zone, rather than recomputing cron rules here.
"""
import calendar
import copy
import datetime

from celery.schedules import BaseSchedule, crontab, solar
from celery.schedules import schedule as interval_schedule
from celery.utils.time import maybe_make_aware, maybe_timedelta
from celery.utils.time import timezone as celery_zones

from .app import celery_app
from .schedules import clocked

UNITS = (('week', 7 * 86400), ('day', 86400), ('hour', 3600),
         ('minute', 60), ('second', 1))
#: Celery counts days of the week from Sunday = 0, as cron does.
WEEKDAYS = ('Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday',
            'Friday', 'Saturday')
#: Beyond this many clock times a list stops being readable.
MAX_LISTED_TIMES = 4


# -- next run ----------------------------------------------------------------

def next_run(schedule, last_run_at, now=None, app=None):
    """When beat will send the job next, as an aware time in the app's zone
    (None: never again, a clocked job that ran).

    ``last_run_at`` is when it last ran; None means never, which beat
    treats as "now" (a new entry waits one interval), but a clocked job
    as "not yet".  A job already due runs at ``now``.
    """
    app = app or celery_app
    now = maybe_make_aware(now or app.now())
    if isinstance(schedule, clocked):
        if last_run_at is not None and last_run_at >= schedule.at:
            return None
        return max(schedule.at, now).astimezone(app.timezone)
    bound = fresh_schedule(schedule)
    bound.app, bound.nowfun = app, lambda: now
    due, seconds = bound.is_due(last_run_at or now)
    # Add in UTC: adding to a local time would add wall-clock hours, one
    # too many or too few across a daylight-saving change.
    fire_at = now.astimezone(datetime.timezone.utc)
    if not due:
        fire_at += datetime.timedelta(seconds=seconds)
    return fire_at.astimezone(app.timezone)


def fresh_schedule(value):
    """A Celery schedule object for ``value``, not shared with the caller.

    A copy, because binding the app and a clock to the entry's own object
    would leak into beat_schedule (and Celery caches the zone on it).
    """
    if isinstance(value, BaseSchedule):
        return copy.copy(value)
    return interval_schedule(maybe_timedelta(value))


# -- descriptions ------------------------------------------------------------

def describe(schedule, timezone_name=None):
    """The schedule in words; crontab and clocked phrases end with the zone
    they use."""
    if isinstance(schedule, clocked):
        zone = timezone_name or 'UTC'
        at = schedule.at.astimezone(celery_zones.get_timezone(zone))
        return f'once at {at:%Y-%m-%d %H:%M}, {zone}'
    if isinstance(schedule, crontab):
        return describe_crontab(schedule, timezone_name or 'UTC')
    if isinstance(schedule, solar):
        # Solar events are instants, the same in every zone.
        return (f'at {solar_event(schedule.event)} at {schedule.lat}, '
                f'{schedule.lon}')
    if isinstance(schedule, interval_schedule):
        schedule = schedule.run_every
    return describe_interval(maybe_timedelta(schedule))


def describe_interval(delta):
    seconds = delta.total_seconds()
    for unit, length in UNITS:
        if seconds >= length and seconds % length == 0:
            return every(int(seconds // length), unit)
    return f'every {seconds:g} seconds'


def every(count, unit):
    return f'every {unit}' if count == 1 else f'every {count} {unit}s'


def solar_event(event):
    """'dawn_civil' reads 'civil dawn'; 'solar_noon' stays 'solar noon'."""
    kind, _, qualifier = event.partition('_')
    if kind in ('dawn', 'dusk'):
        return f'{qualifier} {kind}'
    return event.replace('_', ' ')


def describe_crontab(cron, zone):
    days, interval = days_phrase(cron), uniform_interval(cron)
    if interval and days == '':
        # "every 15 minutes" holds in any zone: no need to name one.
        return interval
    clock = interval or clock_phrase(cron)
    if clock is None or days is None:
        return f'cron "{cron_text(cron)}", {zone}'
    if days == '' and clock.startswith('at '):
        days = ' every day'  # "at 08:00" alone could be read as once
    return f'{clock}{days}, {zone}'


def cron_text(cron):
    """The five fields in cron's order, as written."""
    fields = ('minute', 'hour', 'day_of_month', 'month_of_year',
              'day_of_week')
    return ' '.join(str(getattr(cron, f'_orig_{field}')) for field in fields)


def step(values, cycle):
    """N when ``values`` are 0, N, 2N... filling the cycle evenly, else None.

    Only then is "every N" true everywhere, including from the last value
    round to the first (``*/5`` hours fires at 20:00, then 00:00).  A single
    value is a time of day, not a step.
    """
    ordered = sorted(values)
    count = len(ordered)
    if count == 1 or cycle % count or \
            ordered != list(range(0, cycle, cycle // count)):
        return None
    return cycle // count


def uniform_interval(cron):
    """'every 15 minutes', 'every 2 hours', or None, ignoring the days."""
    minutes, hours = step(cron.minute, 60), step(cron.hour, 24)
    if hours and cron.minute == {0}:
        return every(hours, 'hour')
    if hours == 1 and minutes:
        return every(minutes, 'minute')
    return None


def clock_phrase(cron):
    """'at 08:00 and 17:30', 'every 2 hours at :15', or None."""
    if len(cron.minute) > MAX_LISTED_TIMES:
        return None
    minutes = join_words([f':{minute:02}' for minute in sorted(cron.minute)])
    hours = step(cron.hour, 24)
    if hours:
        return f'{every(hours, "hour")} at {minutes}'
    times = [f'{hour:02}:{minute:02}'
             for hour in sorted(cron.hour) for minute in sorted(cron.minute)]
    if len(times) > MAX_LISTED_TIMES:
        return None
    return f'at {join_words(times)}'


def days_phrase(cron):
    """'' for every day, ' on Monday to Friday', ' every day in July'...

    None when both day_of_month and day_of_week are set: Celery then runs
    on days matching both (cron, on either), and no short phrase is clear.
    """
    monthly = cron.day_of_month != set(range(1, 32))
    weekly = cron.day_of_week != set(range(7))
    if monthly and weekly:
        return None
    phrase = ''
    if monthly:
        plural = 's' if len(cron.day_of_month) > 1 else ''
        phrase = f' on day{plural} {join_runs(cron.day_of_month, str)} ' \
                 'of the month'
    if weekly:
        phrase = f' on {join_runs(cron.day_of_week, WEEKDAYS.__getitem__)}'
    if cron.month_of_year != set(range(1, 13)):
        months = join_runs(cron.month_of_year, calendar.month_name.__getitem__)
        phrase = f'{phrase or " every day"} in {months}'
    return phrase


def join_runs(values, name):
    """'1, 2 and 15' with runs of three or more shortened: '1 to 7 and 15'."""
    runs = []
    for value in sorted(values):
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    words = []
    for run in runs:
        if len(run) >= 3:
            words.append(f'{name(run[0])} to {name(run[-1])}')
        else:
            words.extend(name(value) for value in run)
    return join_words(words)


def join_words(words):
    if len(words) == 1:
        return words[0]
    return ', '.join(words[:-1]) + ' and ' + words[-1]
