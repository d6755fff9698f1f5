import webtest

from myapp import tasks


def test_home_lists_recent_calculations(app):
    tasks.record_sum.apply(args=([2, 3],)).get()
    page = webtest.TestApp(app).get('/', status=200)
    assert 'Recent calculations' in page.text
    assert '[2, 3]' in page.text


def test_unknown_address_is_a_404_page(app):
    page = webtest.TestApp(app).get('/nowhere', status=404)
    assert 'Not found' in page.text
