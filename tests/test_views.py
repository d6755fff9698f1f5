import datetime
import re
import sqlite3

import webtest
from pyramid.paster import get_app

from myapp import tasks
from myapp.celery_integration import celery_app

from .support import write_ini


def test_home_lists_recent_calculations(app):
    tasks.record_sum.apply(args=([2, 3],)).get()
    page = webtest.TestApp(app).get('/', status=200)
    assert 'Recent calculations' in page.text
    assert '[2, 3]' in page.text


def test_unknown_address_is_a_404_page(app):
    page = webtest.TestApp(app).get('/nowhere', status=404)
    assert 'Not found' in page.text


def test_times_are_stored_in_utc_and_shown_in_the_configured_zone(
        tmp_path, initialize_db):
    ini = initialize_db(write_ini(tmp_path, broker='memory',
                                  celery='timezone = Asia/Tokyo'))
    app = get_app(ini)
    result = tasks.record_sum.apply(args=([2, 3],))
    celery_app.backend.store_result(result.id, 5, 'SUCCESS')
    with sqlite3.connect(tmp_path / 'var' / 'results.sqlite') as results:
        (done,) = results.execute(
            'SELECT date_done FROM celery_taskmeta WHERE task_id = ?',
            (result.id,)).fetchone()
    stored = datetime.datetime.fromisoformat(done)
    utc_now = datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None)
    assert abs(stored - utc_now) < datetime.timedelta(minutes=1)  # not +9h
    page = webtest.TestApp(app).get('/', status=200).text
    assert '<td>5</td>' in page  # the sum as written, not 5.0
    # Readable in the zone, the ISO time (as the API writes it) kept.
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}'
                     r'\+09:00" title="[^"]+ JST \(Asia/Tokyo, UTC\+09:00\)">'
                     r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST</time>', page)
