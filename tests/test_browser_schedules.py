"""The periodic job page in a real browser: headless Chromium, driven by
selenium, against the app served by waitress in this process and a real
``pceleryd INI --beat``.

As a person would: add a job on /schedules, reload until beat has run it,
follow its last run to the job page, disable it, run it now, delete it; and
the page fits a desktop window and a phone's width.  The site (its
worker runs beat), the browser and the console check are conftest.py's
fixtures; the waits are tests/browser_support.py's.
"""
import time

import pytest

from .browser_support import JOB_PAGE, RUNNING, shown, wait

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
except ImportError:  # the site fixture skips (or fails) then
    pass

pytestmark = [pytest.mark.worker, pytest.mark.browser,
              pytest.mark.usefixtures('no_console_errors')]

NAME = 'every-2s'
#: How long after "Disable" the count is watched: two periods.
DISABLED_WATCH_SECONDS = 4
DESKTOP = (1280, 900)
PHONE = (390, 844)


@pytest.fixture
def desktop(browser):
    browser.set_window_size(*DESKTOP)
    return browser


# -- what the page shows -----------------------------------------------------

def row_selector(name):
    return f'table.schedules tr[data-schedule="{name}"]'


def row(browser, name):
    """The periodic job's row: its cells by column heading, the row
    itself under ''.  (The cells have no data-field: the heading names
    them as a person reads them.)"""
    element = browser.find_element(By.CSS_SELECTOR, row_selector(name))
    headings = [th.text for th in browser.find_elements(
        By.CSS_SELECTOR, 'table.schedules thead th')]
    cells = element.find_elements(By.TAG_NAME, 'td')
    assert len(cells) == len(headings), (headings, element.text)
    return dict(zip(headings, cells), **{'': element})


def runs(browser, name):
    return int(row(browser, name)['runs'].text)


def last_run_link(browser, name):
    """The link of the row's last run, None while there is none."""
    links = row(browser, name)['last run'].find_elements(By.TAG_NAME, 'a')
    return links[0] if links else None


def no_error(browser):
    errors = [e.text for e in browser.find_elements(By.CSS_SELECTOR,
                                                    '[role=alert]')]
    assert errors == [], errors


def job_detail(browser, term):
    """The text of the job page's ``<dd>`` after ``<dt>term</dt>``."""
    return browser.find_element(
        By.XPATH, f'//dt[.="{term}"]/following-sibling::dd[1]').text


def add_on_the_page(browser, site, name, task, args, type_, schedule,
                    enabled=True):
    """Fill in and send "Add a periodic job"; wait for its row."""
    browser.get(f'{site}/schedules')
    form = browser.find_element(By.ID, 'add-schedule')
    for entry, value in (('name', name), ('args', args),
                         ('schedule', schedule)):
        box = form.find_element(By.ID, entry)
        box.clear()
        box.send_keys(value)
    Select(form.find_element(By.ID, 'task')).select_by_value(task)
    Select(form.find_element(By.ID, 'type')).select_by_value(type_)
    checkbox = form.find_element(By.ID, 'enabled')
    if checkbox.is_selected() != enabled:
        checkbox.click()
    form.find_element(By.CSS_SELECTOR, 'button[type=submit]').click()
    # Redirected to the list (a refusal stays on the POST's page, with
    # the form and the error).
    wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR,
                                            row_selector(name)))
    no_error(browser)


def press(browser, action, name):
    """Press a row's button: ``action`` is enabled, run or delete."""
    browser.find_element(By.CSS_SELECTOR,
                         f'form#{action}-{name} button').click()


def page_fits(browser):
    """The page's width and the window's: no horizontal page scrollbar if
    the first is at most the second."""
    return browser.execute_script(
        'return [document.documentElement.scrollWidth, window.innerWidth];')


# -- the tests ---------------------------------------------------------------

def test_a_job_added_on_the_page_runs_stops_runs_now_and_goes(site, desktop):
    browser = desktop
    # 1. Added as a person would; enabled, as the form offers it.
    add_on_the_page(browser, site, NAME, 'myapp.tasks.add', '[20, 22]',
                    'integer', '2')
    cells = row(browser, NAME)
    assert 'myapp.tasks.add' in cells['task and arguments'].text
    assert '[20, 22]' in cells['task and arguments'].text
    assert cells['last run'].text == 'not yet'
    assert 'disabled' not in cells[''].get_attribute('class').split()
    assert browser.current_url == f'{site}/schedules'

    # 2. Beat (in the worker) sees it without a restart and runs it.
    def reloaded_until_run(browser):
        browser.refresh()
        link = last_run_link(browser, NAME)
        return link is not None and link.text == 'SUCCESS' \
            and runs(browser, NAME) >= 1 and link

    wait(browser, reloaded_until_run, poll=0.5)
    last_run_link(browser, NAME).click()
    wait(browser, lambda b: JOB_PAGE.search(b.current_url)
         and b.find_elements(By.CSS_SELECTOR, 'article.job'))
    assert shown(browser, 'state') == 'SUCCESS'
    assert shown(browser, 'result') == '42'
    assert job_detail(browser, 'Origin') == f'beat:{NAME}'

    # 3. Disabled: said so on the row, and beat stops sending it.
    browser.get(f'{site}/schedules')
    press(browser, 'enabled', NAME)
    wait(browser, lambda b: 'disabled' in row(b, NAME)[''].get_attribute(
        'class').split())
    no_error(browser)
    cells = row(browser, NAME)
    assert cells['next run'].text == 'disabled'
    assert cells[''].find_element(
        By.CSS_SELECTOR, f'form#enabled-{NAME} button').text == 'Enable'
    at_disabling = runs(browser, NAME)
    time.sleep(DISABLED_WATCH_SECONDS)
    browser.refresh()
    later = runs(browser, NAME)
    # A tick sent in the very second of the click may still land.
    assert later <= at_disabling + 1, (
        f'{at_disabling} runs when disabled, {later} '
        f'{DISABLED_WATCH_SECONDS}s later:\n'
        f'{RUNNING["worker"].output()[-4000:]}')

    # 4. Run now, disabled or not: the job's page, as beat's runs have.
    press(browser, 'run', NAME)
    wait(browser, lambda b: JOB_PAGE.search(b.current_url)
         and b.find_elements(By.CSS_SELECTOR, 'article.job'))
    job_id = browser.current_url.rsplit('/', 1)[1]
    assert job_detail(browser, 'Origin') == f'beat:{NAME}'
    wait(browser, lambda b: shown(b, 'state') == 'SUCCESS')
    assert shown(browser, 'result') == '42'
    # The row's last run is now that one; beat's count is beat's alone.
    browser.get(f'{site}/schedules')
    link = last_run_link(browser, NAME)
    assert link.get_attribute('href') == f'{site}/jobs/{job_id}'
    assert link.text == 'SUCCESS'
    assert runs(browser, NAME) == later

    # 5. Deleted: the row is gone.
    press(browser, 'delete', NAME)
    wait(browser, lambda b: b.current_url == f'{site}/schedules'
         and b.find_element(By.ID, 'add-schedule')
         and not b.find_elements(By.CSS_SELECTOR, row_selector(NAME)))
    no_error(browser)


def test_the_page_fits_a_desktop_window_and_a_phone(site, browser):
    """No horizontal scrollbar on the page: at 390 pixels the table
    scrolls inside its own box."""
    name = 'fits-a-phone-with-a-rather-long-name'
    browser.set_window_size(*DESKTOP)
    add_on_the_page(browser, site, name, 'myapp.tasks.add', '[1000, 2000]',
                    'crontab', '{"minute": "*/15", "hour": "8-18"}',
                    enabled=False)
    # A last run on the row too (run now: it is disabled, beat sends none).
    press(browser, 'run', name)
    wait(browser, lambda b: shown(b, 'state') == 'SUCCESS')
    browser.get(f'{site}/schedules')
    assert last_run_link(browser, name).text == 'SUCCESS'
    try:
        for size in (DESKTOP, PHONE):
            browser.set_window_size(*size)
            browser.refresh()
            page, window = page_fits(browser)
            assert page <= window, (
                f'at {size}: the page is {page}px wide in a {window}px '
                f'window')
            # The table is in its scrolling box (which may scroll).
            box = browser.find_element(By.CSS_SELECTOR,
                                       '.table-scroll > table.schedules')
            assert box.is_displayed()
        inner = browser.execute_script('return window.innerWidth;')
        # Chromium kept the phone's width (a window may have a minimum).
        assert inner <= PHONE[0], inner
    finally:
        browser.set_window_size(*DESKTOP)
        browser.get(f'{site}/schedules')
        press(browser, 'delete', name)
        wait(browser, lambda b: not b.find_elements(By.CSS_SELECTOR,
                                                    row_selector(name)))
