"""What the browser tests share: headless Chromium driven by selenium,
waits that explain themselves, signing in, page measurements and
screenshots (the fixtures are in conftest.py).

Skipped when Chromium, chromedriver or selenium is missing, unless
MYAPP_REQUIRE_SERVICES=1 (.ci/run installs them).
"""
import contextlib
import os
import re
import threading

import pytest
import waitress
from pyramid.paster import get_app

from .support import REQUIRE_SERVICES, Worker

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import (NoSuchElementException,
                                            StaleElementReferenceException,
                                            TimeoutException)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    webdriver = None

CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
CHROMIUM_FLAGS = (
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
)
#: The longest any step may take; each wait ends as soon as it is met.
WAIT_SECONDS = 30
JOB_PAGE = re.compile(r'/jobs/[0-9a-f-]{36}')
#: The module's worker, whose log a step that times out shows.
RUNNING = {}
#: A desktop window and a phone's, as (width, height) of the viewport.
DESKTOP = (1280, 900)
PHONE = (390, 844)
#: Where the screenshots go (docs/screenshots, for the README); unset, the
#: test run writes none.
SCREENSHOTS = os.environ.get('MYAPP_SCREENSHOTS')


def require_browser():
    """Skip (or, in CI, fail) unless selenium, Chromium and chromedriver
    are installed: the browser is a service like the others."""
    missing = [name for name, present in (
        ('selenium', webdriver is not None),
        (CHROMIUM, os.access(CHROMIUM, os.X_OK)),
        (CHROMEDRIVER, os.access(CHROMEDRIVER, os.X_OK)),
    ) if not present]
    if missing:
        message = f'{", ".join(missing)} not installed: the browser tests ' \
                  'need selenium, Chromium and chromedriver'
        if REQUIRE_SERVICES:
            pytest.fail(f'{message} and MYAPP_REQUIRE_SERVICES=1')
        pytest.skip(message)




@contextlib.contextmanager
def served(ini):
    """The app of ``ini`` on http://127.0.0.1:PORT (waitress, in this
    process) with a real worker that runs beat: (its base URL, the app)."""
    with Worker(ini, '--beat', '--loglevel', 'INFO') as worker:
        RUNNING['worker'] = worker
        # Beat sends only once it holds the lease.
        worker.wait_for('beat: this process', timeout=30)
        app = get_app(ini)
        server = waitress.create_server(app, host='127.0.0.1', port=0)
        thread = threading.Thread(target=server.run, name='waitress',
                                  daemon=True)
        thread.start()
        try:
            yield f'http://127.0.0.1:{server.effective_port}', app
        finally:
            server.close()
            server.task_dispatcher.shutdown()
            thread.join(10)
            app.registry['dbsession_factory'].kw['bind'].dispose()


def start_browser(profile):
    """Headless Chromium with its own profile folder; console errors kept."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f'--user-data-dir={profile}')
    options.set_capability('goog:loggingPrefs', {'browser': 'SEVERE'})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def console_errors(browser):
    """The errors in the browser's console (a page without a favicon is
    fine)."""
    return [entry['message'] for entry in browser.get_log('browser')
            if 'favicon.ico' not in entry['message']]


def wait(browser, condition, poll=0.05):
    """Wait until ``condition(browser)`` is true; return its value.

    An element missing, or gone with the page it was on, is checked again.
    """
    try:
        return WebDriverWait(
            browser, WAIT_SECONDS, poll_frequency=poll,
            ignored_exceptions=(NoSuchElementException,
                                StaleElementReferenceException),
        ).until(condition)
    except TimeoutException:
        page = browser.find_element(By.TAG_NAME, 'body').text
        raise AssertionError(
            f'not met in {WAIT_SECONDS}s on {browser.current_url}:\n{page}'
            f'\n-- the worker\'s log, last lines:\n'
            f'{RUNNING["worker"].output()[-4000:]}') from None


def field(browser, name):
    return browser.find_element(By.CSS_SELECTOR, f'[data-field="{name}"]')


def shown(browser, name):
    """The text of a part of the page, as a person sees it ('' if hidden)."""
    return field(browser, name).text


# -- signing in -------------------------------------------------------------

def sign_in(browser, site, name, secret):
    """Sign in on /login as a person would, signed out first; wait until
    the header says who."""
    browser.delete_all_cookies()
    browser.get(f'{site}/login')
    form = browser.find_element(By.ID, 'login')
    form.find_element(By.ID, 'name').send_keys(name)
    form.find_element(By.ID, 'token').send_keys(secret)
    form.find_element(By.CSS_SELECTOR, 'button[type=submit]').click()
    wait(browser, lambda b: shown(b, 'identity').startswith(f'{name} ('))


# -- measuring the page -----------------------------------------------------

def set_viewport(browser, width, height):
    """Make the page's viewport (not the window, which has a frame)
    ``width`` x ``height``."""
    browser.set_window_size(width, height)
    inner = browser.execute_script(
        'return [window.innerWidth, window.innerHeight];')
    browser.set_window_size(2 * width - inner[0], 2 * height - inner[1])


def page_overflow(browser):
    """How many pixels the page is wider than its window: more than 0 is
    a horizontal page scrollbar."""
    return browser.execute_script(
        'return document.documentElement.scrollWidth - window.innerWidth;')


def cut_off(browser, selector):
    """The elements of ``selector`` that are shown but cut: content wider
    than their box (hidden or scrolled away), or a box past the window's
    right edge.  Each as the start of its text."""
    return browser.execute_script("""
        return Array.from(document.querySelectorAll(arguments[0]))
          .filter(e => e.offsetParent !== null && (
            e.scrollWidth > e.clientWidth + 1 ||
            e.getBoundingClientRect().right > window.innerWidth))
          .map(e => e.textContent.slice(0, 60));""", selector)


# -- screenshots ------------------------------------------------------------

def screenshot(browser, url, name):
    """Save the page at ``url`` as NAME.png in $MYAPP_SCREENSHOTS, at
    1280 x 900; nothing without it.  One call per page."""
    if not SCREENSHOTS:
        return
    os.makedirs(SCREENSHOTS, exist_ok=True)
    set_viewport(browser, *DESKTOP)
    browser.get(url)
    wait(browser, lambda b: b.execute_script(
        'return document.readyState;') == 'complete')
    browser.save_screenshot(os.path.join(SCREENSHOTS, f'{name}.png'))
