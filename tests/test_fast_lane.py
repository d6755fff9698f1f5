"""The fast lane's guard (``make test-fast``): a test that starts a process
or needs a service fails there, naming the marker it lacks."""
import pytest

from . import support


def test_starting_a_process_fails_and_names_the_worker_marker():
    with support.processes_refused(), pytest.raises(
            pytest.fail.Exception, match='mark it @pytest.mark.worker'):
        support.run_command('pceleryd')


def test_needing_a_service_fails_and_names_the_services_marker(monkeypatch):
    monkeypatch.setattr(support, 'FAST_LANE', True)
    with pytest.raises(pytest.fail.Exception,
                       match='needs redis: mark it @pytest.mark.services'):
        support.require('redis')
