"""The errors the integration and the application it serves share.

This module imports nothing of Celery's or pyramid_celery's, so that an
application's models, scripts and migrations can raise :class:`StartupError`
without setting up any Celery machinery.
"""
import difflib
import re

#: ``scheme://user:password@host``: the password, to be hidden.
URL_PASSWORD = re.compile(r'(\w[\w+.-]*://[^:/@\s]*:)[^@\s]+@')


def mask_secrets(text):
    """``text`` with the password of every URL in it replaced by ``**``."""
    return URL_PASSWORD.sub(r'\1**@', text)


class StartupError(SystemExit):
    """Stops pserve, pshell, the worker or beat with one line, no traceback."""

    def __init__(self, message):
        super().__init__(f'error: {mask_secrets(message)}')


class ConfigError(Exception):
    """A setting in the ini file is wrong; says where and how to fix it."""

    def __init__(self, path, section, key, problem, hint=None):
        self.path, self.section, self.key = path, section, key
        self.problem, self.hint = problem, hint
        super().__init__(str(self))

    def __str__(self):
        where = self.path
        if self.section:
            where += f', section [{self.section}]'
        if self.key:
            where += f', key "{self.key}"'
        message = f'{where}: {self.problem}'
        if self.hint:
            message += f'; {self.hint}'
        # One line, and never a password: values are quoted in messages.
        return mask_secrets(' '.join(message.split()))


def closest(word, candidates):
    """The candidate closest to ``word`` (ignoring case), or None."""
    by_key = {candidate.lower(): candidate for candidate in candidates}
    close = difflib.get_close_matches(word.lower(), list(by_key), n=1,
                                      cutoff=0.6)
    return by_key[close[0]] if close else None


def suggest(word, candidates):
    """'did you mean X?' for the closest candidate, or None."""
    match = closest(word, candidates)
    return None if match is None else f'did you mean "{match}"?'
