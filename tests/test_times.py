"""Times on the pages (myapp/views/times.py): readable, in the configured
zone with the abbreviation it has at that instant, exact on hover, "3 s
ago" where asked; and the JSON API's ISO 8601 text left as it was.

No worker, no browser: the filter is called directly, and through the
pages with webtest.  tests/test_browser_console.py sees static/times.js
keep the "ago" fresh.
"""
import datetime
import re

import pytest
import webtest
from bs4 import BeautifulSoup
from pyramid.paster import get_app

from myapp.celery_integration import celery_app
from myapp.views import times

from .jobs_support import set_state
from .support import write_ini

UTC = datetime.timezone.utc
#: 2026-11-23 02:44:50.123 in Tokyo.
MOMENT = datetime.datetime(2026, 11, 22, 17, 44, 50, 123456, tzinfo=UTC)
READABLE = re.compile(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z]+')


@pytest.fixture
def tokyo(monkeypatch):
    """The app's zone is Asia/Tokyo, as ``[celery] timezone`` sets it."""
    monkeypatch.setattr(celery_app.conf, 'timezone', 'Asia/Tokyo')
    celery_app.__dict__.pop('timezone', None)  # Celery caches it
    yield
    celery_app.__dict__.pop('timezone', None)


def parsed(html):
    """(the <time> element, the "ago" element or None) of the filter's
    HTML."""
    soup = BeautifulSoup(str(html), 'html.parser')
    return soup.find('time'), soup.find(class_='relative')


# -- the text ---------------------------------------------------------------

def test_a_time_reads_in_the_app_zone_with_the_exact_time_on_hover(tokyo):
    time, relative = parsed(times.time_html(MOMENT))
    assert time.text == '2026-11-23 02:44:50 JST'
    assert time['datetime'] == '2026-11-23T02:44:50.123+09:00'
    assert time['title'] == '2026-11-23 02:44:50.123 JST ' \
                            '(Asia/Tokyo, UTC+09:00)'
    assert relative is None


def test_the_api_text_reads_the_same(tokyo):
    """The pages hand the API's ISO text (format_time) to the filter."""
    for value in ('2026-11-23T02:44:50.123+09:00',
                  '2026-11-22T17:44:50.123+00:00'):
        time, _ = parsed(times.time_html(value))
        assert (time.text, time['datetime']) == (
            '2026-11-23 02:44:50 JST', '2026-11-23T02:44:50.123+09:00')


def test_a_naive_time_is_utc_as_the_database_keeps_it(tokyo):
    time, _ = parsed(times.time_html(MOMENT.replace(tzinfo=None)))
    assert time.text == '2026-11-23 02:44:50 JST'


@pytest.mark.parametrize('zone, when, text, offset', [
    ('Europe/Paris', datetime.datetime(2026, 1, 15, 12), '13:00:00 CET',
     '+01:00'),
    ('Europe/Paris', datetime.datetime(2026, 7, 15, 12), '14:00:00 CEST',
     '+02:00'),
    # Either side of the spring change (2026-03-29 01:00 UTC).
    ('Europe/Paris', datetime.datetime(2026, 3, 29, 0, 59, 59),
     '01:59:59 CET', '+01:00'),
    ('Europe/Paris', datetime.datetime(2026, 3, 29, 1, 0, 0),
     '03:00:00 CEST', '+02:00'),
    # The autumn hour that is lived twice: once in each abbreviation.
    ('Europe/Paris', datetime.datetime(2026, 10, 25, 0, 30), '02:30:00 CEST',
     '+02:00'),
    ('Europe/Paris', datetime.datetime(2026, 10, 25, 1, 30), '02:30:00 CET',
     '+01:00'),
    ('America/New_York', datetime.datetime(2026, 1, 15, 12), '07:00:00 EST',
     '-05:00'),
    ('America/New_York', datetime.datetime(2026, 7, 15, 12), '08:00:00 EDT',
     '-04:00'),
    ('UTC', datetime.datetime(2026, 7, 15, 12), '12:00:00 UTC', '+00:00'),
])
def test_the_abbreviation_is_the_zone_s_at_that_instant(zone, when, text,
                                                        offset):
    time, _ = parsed(times.time_html(when.replace(tzinfo=UTC), zone=zone))
    assert time.text.endswith(text)
    assert time['datetime'].endswith(offset)
    assert f'UTC{offset})' in time['title']


def test_a_zone_that_says_nothing_more_than_its_abbreviation_is_not_repeated():
    time, _ = parsed(times.time_html(MOMENT, zone='UTC'))
    assert time['title'] == '2026-11-22 17:44:50.123 UTC (UTC+00:00)'


def test_a_periodic_job_s_unknown_zone_falls_back_to_the_app_s(tokyo):
    for zone in ('Mars/Olympus_Mons', '', None):
        time, _ = parsed(times.time_html(MOMENT, zone=zone))
        assert time.text == '2026-11-23 02:44:50 JST'


def test_no_time_is_a_dash():
    assert times.time_html(None) == '—'
    assert times.time_html(None, relative=True) == '—'


def test_the_time_is_escaped_html_safe():
    html = times.time_html(MOMENT, zone='UTC', relative=True)
    assert '<script' not in html and str(html).startswith('<time ')


# -- "3 s ago" -------------------------------------------------------------

@pytest.mark.parametrize('seconds, text', [
    (0, 'just now'), (0.9, 'just now'), (1, '1 s ago'), (3.7, '3 s ago'),
    (59, '59 s ago'), (60, '1 min ago'), (5 * 60 + 59, '5 min ago'),
    (3600, '1 h ago'), (23 * 3600, '23 h ago'), (86400, '1 d ago'),
    (40 * 86400, '40 d ago'),
    (-5, 'in 5 s'), (-90, 'in 1 min'), (-2 * 3600, 'in 2 h'),
])
def test_relative_text(seconds, text):
    now = MOMENT + datetime.timedelta(seconds=seconds)
    assert times.relative_text(MOMENT, now) == text


def test_relative_text_follows_the_time_when_asked(tokyo):
    now = MOMENT + datetime.timedelta(minutes=5, seconds=3)
    time, relative = parsed(times.time_html(MOMENT, relative=True, now=now))
    assert relative.text == '5 min ago'
    # static/times.js counts from the same instant.
    assert relative['data-relative-to'] == time['datetime']


# -- what the layout gives static/times.js --------------------------------

def test_the_page_clock_names_the_zone_and_its_abbreviations(tokyo):
    assert times.page_clock(MOMENT) == {
        'now': '2026-11-22T17:44:50.123+00:00',
        'zone': {'name': 'Asia/Tokyo', 'abbreviations': {'+09:00': 'JST'}}}


def test_the_page_clock_has_both_abbreviations_around_a_change(monkeypatch):
    monkeypatch.setattr(celery_app.conf, 'timezone', 'Europe/Paris')
    celery_app.__dict__.pop('timezone', None)
    try:
        clock = times.page_clock(datetime.datetime(2026, 3, 28, 12,
                                                   tzinfo=UTC))
    finally:
        celery_app.__dict__.pop('timezone', None)
    assert clock['zone']['abbreviations'] == {'+01:00': 'CET',
                                              '+02:00': 'CEST'}


# -- on the pages, not in the API ------------------------------------------

@pytest.fixture(scope='module')
def tokyo_ini(tmp_path_factory, initialize_db):
    return initialize_db(write_ini(tmp_path_factory.mktemp('tokyo'),
                                   broker='memory',
                                   celery='timezone = Asia/Tokyo'))


@pytest.fixture
def tokyo_pages(tokyo_ini):
    app = get_app(tokyo_ini)
    yield webtest.TestApp(app)
    app.registry['dbsession_factory'].kw['bind'].dispose()


def test_the_pages_show_readable_times_and_the_api_keeps_iso(tokyo_pages):
    job = tokyo_pages.post_json('/api/jobs', {'task': 'myapp.tasks.add',
                                              'args': [1, 2]}).json
    set_state(tokyo_pages.app, job['id'], 'SUCCESS', result=3,
              finished_at=datetime.datetime.now(UTC))
    api_job = tokyo_pages.get(f'/api/jobs/{job["id"]}').json
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+09:00',
                        api_job['created_at'])
    for path in ('/jobs', f'/jobs/{job["id"]}'):
        page = tokyo_pages.get(path)
        shown = page.html.find_all('time')
        assert shown, path
        for time in shown:
            assert READABLE.fullmatch(time.text) and \
                time.text.endswith(' JST'), (path, time)
            assert time['title'].endswith(' JST (Asia/Tokyo, UTC+09:00)')
        assert api_job['created_at'] in [time['datetime'] for time in shown]
        # The layout gives static/times.js the zone and the clock.
        assert page.html.html['data-time-zone'] == \
            '{"abbreviations": {"+09:00": "JST"}, "name": "Asia/Tokyo"}'
    relative = page.html.find(attrs={'data-field': 'finished_at'}).find(
        class_='relative')
    assert relative.text in ('just now', '1 s ago', '2 s ago')
