"""The job pages in a real browser: headless Chromium, driven by selenium,
against the app served by waitress in this process and a real worker.

What only a browser shows: the form submitted as a person would, the
redirect followed, and static/jobs.js updating the pages from the JSON API.
Skipped when Chromium, chromedriver or selenium is missing, unless
MYAPP_REQUIRE_SERVICES=1 (.ci/run installs them).  The site, the browser
and the console check are conftest.py's fixtures.
"""
import pytest

from myapp import tasks

from .browser_support import JOB_PAGE, field, shown, wait

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
except ImportError:  # the site fixture skips (or fails) then
    pass

pytestmark = [pytest.mark.worker, pytest.mark.browser,
              pytest.mark.usefixtures('no_console_errors')]


def start_from_dashboard(browser, site, task, args, kwargs=''):
    """Fill in and send the dashboard's form; wait for the job page."""
    browser.get(f'{site}/jobs')
    Select(browser.find_element(By.ID, 'task')).select_by_value(task)
    for name, value in (('args', args), ('kwargs', kwargs)):
        entry = browser.find_element(By.ID, name)
        entry.clear()
        entry.send_keys(value)
    browser.find_element(By.CSS_SELECTOR, 'form.start-job button').click()
    wait(browser, lambda b: JOB_PAGE.search(b.current_url)
         and b.find_elements(By.CSS_SELECTOR, 'article.job'))
    return browser.current_url.rsplit('/', 1)[1]


def progress(browser):
    """The bar's (value, max), or (None, None) while it is indeterminate."""
    bar = field(browser, 'progress')
    value = bar.get_dom_attribute('value')
    if value is None:
        return None, None
    return float(value), float(bar.get_dom_attribute('max'))


def test_slow_add_from_the_dashboard_to_its_result(site, browser):
    start_from_dashboard(browser, site, 'myapp.tasks.slow_add', '[2, 3]',
                         '{"seconds": 3}')
    values = []

    def bar_at(reached):
        def check(browser):
            value, maximum = progress(browser)
            if value is not None and value not in values:
                values.append(value)
            return value is not None and reached(value, maximum)
        return check

    # The bar moves without a reload, then fills up.
    wait(browser, bar_at(lambda value, maximum: 0 < value < maximum))
    wait(browser, bar_at(lambda value, maximum: value == maximum))
    assert values == sorted(values) and progress(browser) == (3, 3)
    assert shown(browser, 'progress-message') == 'done'
    wait(browser, lambda b: shown(b, 'state') == 'SUCCESS')
    assert shown(browser, 'result') == '5'
    assert not field(browser, 'cancel').is_displayed()
    assert shown(browser, 'finished_at')


def test_the_cancel_button_stops_a_running_job(site, browser):
    job_id = start_from_dashboard(browser, site, 'myapp.tasks.slow_add',
                                  '[1, 1]', '{"seconds": 30}')
    wait(browser, lambda b: shown(b, 'state') == 'PROGRESS')
    field(browser, 'cancel').find_element(By.TAG_NAME, 'button').click()
    wait(browser, lambda b: shown(b, 'state') == 'REVOKED')
    assert browser.current_url == f'{site}/jobs/{job_id}'
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-field=cancel]')
    # The worker stopped it at its next progress report.
    wait(browser, lambda b: tasks.slow_add.AsyncResult(job_id).state
         == 'REVOKED', poll=0.2)


def test_the_dashboard_follows_its_unfinished_jobs(site, browser):
    job_id = start_from_dashboard(browser, site, 'myapp.tasks.slow_add',
                                  '[1, 1]', '{"seconds": 30}')
    browser.get(f'{site}/jobs')
    row = f'tr[data-job-id="{job_id}"] [data-field="state"]'
    assert browser.find_element(By.CSS_SELECTOR, row).text != 'REVOKED'
    browser.execute_script('window.notReloaded = true;')
    # Another client revokes it, through the JSON API.
    revoked = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('/api/jobs/{job_id}/revoke', {{method: 'POST', headers: "
        "{'Content-Type': 'application/json'}})"
        ".then(response => done(response.status));")
    assert revoked == 202
    wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, row).text
         == 'REVOKED')
    assert browser.execute_script('return window.notReloaded === true;')


def test_seed_add_moves_from_pending_to_success_on_reload(site, browser):
    browser.get(f'{site}/seed/add')
    browser.find_element(By.CSS_SELECTOR, 'main form button').click()
    # The click only starts the form's POST: a refresh before the redirect
    # arrives would cancel it, and nothing would be queued.
    wait(browser, lambda b: b.current_url.startswith(f'{site}/seed/add/'))

    def reloaded_until_ready(browser):
        browser.refresh()
        return browser.find_element(By.XPATH,
                                    '//dt[.="ready()"]/following-sibling::dd'
                                    ).text == 'True'

    wait(browser, reloaded_until_ready, poll=0.2)
    details = dict(zip(
        (dt.text for dt in browser.find_elements(By.TAG_NAME, 'dt')),
        (dd.text for dd in browser.find_elements(By.TAG_NAME, 'dd'))))
    assert details['State'] == 'SUCCESS' and details['Result'] == '10'
