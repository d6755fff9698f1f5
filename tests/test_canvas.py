"""Celery's canvas in the job history: a chain's steps and a link's
callback name the job before them as their parent, which lists them as
children; a group and a chord are one unit (``GET /api/groups/ID``), on
real workers (the embedded setup, and Redis, whose result backend joins
chords natively)."""
import pytest
import webtest
from celery import chain, chord, group
from pyramid.paster import get_app

from myapp import tasks
from myapp.models.types import utcnow

from .jobs_support import poll_job, put_job, wait_until
from .support import Worker, require, write_ini


def group_of(api, group_id, status=200):
    return api.get(f'/api/groups/{group_id}', status=status).json


def finished_group(api, group_id):
    """The group once all its jobs have finished, else None: the sender
    records jobs in the background, so a group's result can be back
    before its rows are written (404 until then)."""
    response = api.get(f'/api/groups/{group_id}', status=(200, 404))
    if response.status_int == 200 and response.json['finished']:
        return response.json
    return None


# -- without a worker --------------------------------------------------------

def test_a_group_is_one_unit_with_one_state(api):
    for index, state in enumerate(['SUCCESS', 'FAILURE', 'STARTED']):
        put_job(api.app, f'member-{index}', state=state,
                           group_id='g-1', options={'group_index': index})
    shown = group_of(api, 'g-1')
    assert (shown['kind'], shown['size'], shown['state'], shown['finished'],
            shown['counts'], shown['callback']) == (
        'group', 3, 'FAILURE', False,
        {'SUCCESS': 1, 'FAILURE': 1, 'STARTED': 1}, None)
    assert [job['id'] for job in shown['jobs']] == [
        'member-0', 'member-1', 'member-2']
    assert all(job['group_id'] == 'g-1' for job in shown['jobs'])


@pytest.mark.parametrize('states, expected', [
    (['PENDING', 'PENDING'], 'PENDING'),
    (['SUCCESS', 'PENDING'], 'STARTED'),
    (['SUCCESS', 'SUCCESS'], 'SUCCESS'),
    (['SUCCESS', 'REVOKED'], 'REVOKED'),
])
def test_the_state_of_a_group(api, states, expected):
    for index, state in enumerate(states):
        put_job(api.app, f'm-{index}', state=state,
                           group_id='g-2', options={'group_index': index})
    assert group_of(api, 'g-2')['state'] == expected


def test_a_chord_is_its_header_and_its_callback(api):
    for index in range(2):
        put_job(api.app, f'head-{index}', state='SUCCESS',
                           group_id='c-1', options={'group_index': index})
    put_job(api.app, 'body', state='PENDING', group_id='c-1')
    shown = group_of(api, 'c-1')
    assert (shown['kind'], shown['size'], shown['state'],
            shown['callback']['id']) == ('chord', 2, 'STARTED', 'body')


def test_a_chord_waits_for_its_callback_before_it_is_finished(api):
    # Celery sends the callback once the header has run: until its row
    # exists, the header's options name it.
    chord_option = {'task': 'myapp.tasks.xsum', 'args': [], 'kwargs': {},
                    'options': {'task_id': 'body-to-come'}}
    for index in range(2):
        put_job(api.app, f'header-{index}', state='SUCCESS',
                group_id='c-2', options={'group_index': index,
                                         'chord': chord_option})
    shown = group_of(api, 'c-2')
    assert (shown['kind'], shown['state'], shown['finished'],
            shown['callback'], shown['callback_id']) == (
        'chord', 'STARTED', False, None, 'body-to-come')


@pytest.mark.parametrize('group_id', ['nothing-here', 'not a group id'])
def test_a_group_with_no_job_is_404(api, group_id):
    assert group_of(api, group_id, status=404)['error'] == 'no such group'


def test_a_job_lists_the_jobs_it_sent(api):
    put_job(api.app, 'parent', state='SUCCESS', started_at=utcnow())
    put_job(api.app, 'child-1', origin='task:parent',
                       parent_id='parent')
    put_job(api.app, 'other', origin='http')
    shown = api.get('/api/jobs/parent').json
    assert shown['children'] == ['child-1']
    assert api.get('/api/jobs/child-1').json['parent_id'] == 'parent'


def test_a_retry_of_a_member_is_not_in_the_group(api):
    put_job(api.app, 'failed-member', state='FAILURE',
                       group_id='g-3', options={'group_index': 0})
    retry = api.post_json('/api/jobs/failed-member/retry', {},
                          status=202).json
    assert retry['group_id'] is None and retry['retry_of'] == 'failed-member'
    assert group_of(api, 'g-3')['size'] == 1


# -- real workers ------------------------------------------------------------

@pytest.fixture(scope='module', params=['filesystem', 'redis'])
def canvas_site(request, tmp_path_factory, initialize_db):
    backend = 'sqlite'
    if request.param == 'redis':
        require('redis')
        backend = 'redis'
    ini = initialize_db(write_ini(tmp_path_factory.mktemp('canvas'),
                                  broker=request.param, backend=backend))
    app = get_app(ini)
    with Worker(ini):
        yield webtest.TestApp(app)
    app.registry['dbsession_factory'].kw['bind'].dispose()


@pytest.mark.worker
def test_a_chain_and_a_link_are_parents_and_children(canvas_site):
    api = canvas_site
    last = chain(tasks.add.s(1, 2), tasks.add.s(10), tasks.mul.s(2))()
    assert last.get(timeout=30) == 26
    second, first = last.parent, last.parent.parent
    # Redis has the result before the worker's rows are written.
    for job, child in ((first, second), (second, last)):
        assert wait_until(lambda: api.get(f'/api/jobs/{job.id}').json[
            'children'], what=f'the child of {job.id}') == [child.id]
    assert api.get(f'/api/jobs/{last.id}').json['parent_id'] == second.id

    linked = tasks.add.apply_async((5, 5), link=tasks.add.s(100))
    assert linked.get(timeout=30) == 10
    children = wait_until(lambda: api.get(
        f'/api/jobs/{linked.id}').json['children'], what='the callback')
    assert poll_job(api, children[0])['result'] == 110


@pytest.mark.worker
def test_a_group_and_a_chord_are_one_unit(canvas_site):
    api = canvas_site
    members = group(tasks.add.s(n, n) for n in range(3))()
    assert members.get(timeout=30) == [0, 2, 4]
    shown = wait_until(lambda: finished_group(api, members.id),
                       what='the group finished')
    assert (shown['kind'], shown['size'], shown['state']) == (
        'group', 3, 'SUCCESS')
    assert sorted(job['id'] for job in shown['jobs']) == sorted(
        result.id for result in members.results)

    total = chord(tasks.add.s(n, 1) for n in range(3))(tasks.xsum.s())
    assert total.get(timeout=30) == 6
    header_id = total.parent.id
    shown = wait_until(lambda: finished_group(api, header_id),
                       what='the chord finished')
    assert (shown['kind'], shown['size'], shown['state'],
            shown['callback']['id'], shown['callback']['result']) == (
        'chord', 3, 'SUCCESS', total.id, 6)
    assert api.get(f'/api/jobs/{total.id}').json['group_id'] == header_id


# -- the pages ---------------------------------------------------------------

def test_the_job_page_links_parent_children_and_group(api):
    put_job(api.app, 'parent', state='SUCCESS', started_at=utcnow())
    put_job(api.app, 'child-1', origin='task:parent', parent_id='parent',
            group_id='g-4', options={'group_index': 0})
    page = api.get('/jobs/parent')
    assert page.html.find(attrs={'data-field': 'children'}).a['href'] \
        .endswith('/jobs/child-1')
    child = api.get('/jobs/child-1')
    assert child.html.find(attrs={'data-field': 'parent'})['href'] \
        .endswith('/jobs/parent')
    group_link = child.html.find(attrs={'data-field': 'group'})
    assert group_link.a['href'].endswith('/groups/g-4')
    assert 'PENDING' in group_link.text


def test_a_parent_that_is_no_job_is_not_linked(api):
    # A chord's callback: Celery's chord_unlock sent it.
    put_job(api.app, 'callback', origin='task:chord-unlock-id',
            parent_id='chord-unlock-id', group_id='c-3')
    page = api.get('/jobs/callback')
    assert page.html.find(attrs={'data-field': 'parent'}) is None
    assert 'task:chord-unlock-id' in page.text


def test_the_group_page_shows_the_unit(api):
    for index in range(2):
        put_job(api.app, f'head-{index}', state='SUCCESS', group_id='c-4',
                options={'group_index': index, 'chord': {
                    'task': 'myapp.tasks.xsum',
                    'options': {'task_id': 'body-4'}}})
    page = api.get('/groups/c-4')
    assert page.html.find(attrs={'data-field': 'group-state'}).text == \
        'STARTED'
    assert len(page.html.select('tr[data-job-id]')) == 2
    assert 'body-4' in page.html.find(
        attrs={'data-field': 'callback-to-come'}).text
    put_job(api.app, 'body-4', state='SUCCESS', group_id='c-4')
    page = api.get('/groups/c-4')
    assert page.html.find(attrs={'data-field': 'group-state'}).text == \
        'SUCCESS'
    assert len(page.html.select('tr[data-job-id]')) == 3
    api.get('/groups/nothing-here', status=404)
