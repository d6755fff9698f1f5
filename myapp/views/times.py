"""How the pages show times: readable, in the configured zone, exact on
hover.

One Jinja2 filter, ``when``, used by every template that shows a time::

    {{ job.created_at|when(relative=True) }}
    {{ s.next_run_at|when(zone=s.timezone) }}

renders ``<time datetime="2026-11-23T02:44:50.123+09:00" title="2026-11-23
02:44:50.123 JST (Asia/Tokyo, UTC+09:00)">2026-11-23 02:44:50 JST</time>``
and, with ``relative``, ``<small class="relative">3 s ago</small>`` after
it, which ``static/times.js`` keeps fresh.  The zone is ``[celery]
timezone``, as in the JSON API (:func:`~myapp.jobs.presentation.format_time`),
or a periodic job's own; its abbreviation is the tz database's for that
instant, so it is right on either side of a daylight-saving change (CET,
CEST).  The API keeps its ISO 8601 text: only the pages use this.

The layout also carries the zone and the server's clock
(:func:`page_clock`), for the script to render the times the live updates
bring (``static/jobs.js``) as the server would, and to count "3 s ago" on
the server's clock rather than the browser's.
"""
import datetime

from markupsafe import Markup
from pyramid_jinja2 import EXTRAS_CONFIG_PHASE

from ..jobs.presentation import display_zone
from ..models.types import UTC, utcnow

#: "3 s ago": the largest unit that fits, whole.
UNITS = ((86400, 'd'), (3600, 'h'), (60, 'min'), (1, 's'))

TIME_HTML = Markup('<time datetime="{}" title="{}">{}</time>')
RELATIVE_HTML = Markup(' <small class="relative" data-relative-to="{}">'
                       '{}</small>')
#: What a missing time shows.
NO_TIME = Markup('—')


def in_zone(value, zone=None):
    """``value`` (an aware datetime, or ISO 8601 text as the API writes
    it; naive means UTC, as the database keeps it) in ``zone`` (a tz
    database name; None, or one that is unknown: the app's)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone_named(zone))


def zone_named(name):
    """The zone ``name`` names; the app's when none, or unknown (a
    periodic job's zone written in SQL may be)."""
    try:
        return display_zone(name or None)
    except (KeyError, ValueError):
        return display_zone()


def readable(moment):
    """``2026-11-23 02:44:50 JST``: to the second, with the abbreviation
    the zone has at that instant."""
    return f'{moment:%Y-%m-%d %H:%M:%S} {moment.tzname()}'


def exact(moment):
    """``2026-11-23 02:44:50.123 JST (Asia/Tokyo, UTC+09:00)``: to the
    millisecond, with the zone's name (when it says more than its
    abbreviation) and the offset."""
    name = str(moment.tzinfo)
    offset = f'UTC{utc_offset(moment)}'
    where = offset if name == moment.tzname() else f'{name}, {offset}'
    return f'{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d} ' \
           f'{moment.tzname()} ({where})'


def utc_offset(moment):
    """``+09:00``, as ISO 8601 writes it."""
    return moment.isoformat()[-6:]


def relative_text(moment, now):
    """``3 s ago``, ``5 min ago``, ``in 2 h``: whole units, rounded down
    (static/times.js counts the same way)."""
    seconds = (now - moment).total_seconds()
    amount = abs(seconds)
    if amount < 1:
        return 'just now'
    size, unit = next((size, unit) for size, unit in UNITS if amount >= size)
    text = f'{int(amount // size)} {unit}'
    return f'{text} ago' if seconds > 0 else f'in {text}'


def time_html(value, zone=None, relative=False, now=None):
    """The filter ``when``: a ``<time>`` as the module says; "—" for
    none."""
    moment = in_zone(value, zone)
    if moment is None:
        return NO_TIME
    iso = moment.isoformat(timespec='milliseconds')
    html = TIME_HTML.format(iso, exact(moment), readable(moment))
    if relative:
        html += RELATIVE_HTML.format(iso,
                                     relative_text(moment, now or utcnow()))
    return html


def page_clock(now=None):
    """What static/times.js needs: the server's time, and the app's zone
    (its name, and its abbreviation for each offset it has around now: a
    job that runs across a daylight-saving change shows the new one)."""
    now = now or utcnow()
    zone = display_zone()
    abbreviations = {}
    for hours in (-24, 0, 24):
        moment = (now + datetime.timedelta(hours=hours)).astimezone(zone)
        abbreviations[utc_offset(moment)] = moment.tzname()
    return {'now': now.isoformat(timespec='milliseconds'),
            'zone': {'name': str(zone), 'abbreviations': abbreviations}}


def includeme(config):
    """The filter and the layout's clock, once pyramid_jinja2 has made its
    environment (an action of its own, run before this one)."""
    def register():
        environment = config.get_jinja2_environment()
        environment.filters['when'] = time_html
        environment.globals['page_clock'] = page_clock

    config.action(None, register, order=EXTRAS_CONFIG_PHASE)
