"""Exposing tasks for HTTP, and checking JSON arguments against them."""
from typing import Optional, Union

import pytest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError

from myapp.jobs.exposure import accepts, expose_task


@pytest.mark.parametrize('annotation, value, fits', [
    (int, 3, True), (int, 3.0, False), (int, True, False),
    (float, 3, True), (float, False, False),
    (str, 'x', True), (bool, False, True), (bool, 0, False),
    (list, [], True), (dict, {}, True), (dict, [], False),
    (Optional[int], None, True), (Optional[int], 'x', False),
    (Union[int, str], 'x', True), (list[int], [1], True),
    ('int', 'x', False),          # from __future__ import annotations
    ('MyType', 'x', True),        # not JSON's business: the task checks
    (object, 'x', True),
])
def test_annotations_json_can_check(annotation, value, fits):
    assert accepts(annotation, value) is fits


def test_only_tasks_declared_with_task_can_be_exposed():
    config = Configurator()
    with pytest.raises(ConfigurationError, match='not a task declared'):
        expose_task(config, 'myapp.tasks.Calculation')
