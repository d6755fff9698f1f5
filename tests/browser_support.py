"""What the browser tests share: headless Chromium driven by selenium,
and waits that explain themselves (the fixtures are in conftest.py).

Skipped when Chromium, chromedriver or selenium is missing, unless
MYAPP_REQUIRE_SERVICES=1 (.ci/run installs them).
"""
import os
import re

import pytest

from .support import REQUIRE_SERVICES

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


