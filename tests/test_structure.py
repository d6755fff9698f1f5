"""The shape of the code: imports cost nothing and go one way.

* importing the models (as Alembic, scripts and ``initialize_myapp_db`` do)
  or the integration package sets up no Celery machinery;
* the integration's signal handlers are connected by ``configure_celery``,
  once however often it runs;
* no module of myapp imports, even from inside a function, a module that
  imports it back.
"""
import ast
import json
import pathlib
import subprocess
import sys
import textwrap

from celery import signals
from pyramid.paster import get_app

import pytest

import myapp

PACKAGE_DIR = pathlib.Path(myapp.__file__).parent

#: Run in a fresh interpreter: which Celery signals have receivers, and
#: whether pyramid_celery (and with it Celery's app) was imported.
SIGNAL_PROBE = textwrap.dedent("""
    import json, sys
    from celery import signals
    def receivers():
        return {name: len(signal.receivers) for name, signal
                in vars(signals).items() if isinstance(signal, signals.Signal)}
    before = receivers()
    import MODULE
    after = receivers()
    print(json.dumps({
        'connected': sorted(name for name in after
                            if after[name] != before[name]),
        'pyramid_celery': 'pyramid_celery' in sys.modules}))
""")


def import_in_fresh_interpreter(module):
    probe = subprocess.run(
        [sys.executable, '-c', SIGNAL_PROBE.replace('MODULE', module)],
        capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    return json.loads(probe.stdout)


@pytest.mark.worker  # a fresh interpreter
def test_importing_the_models_connects_no_celery_signal():
    assert import_in_fresh_interpreter('myapp.models') == \
        {'connected': [], 'pyramid_celery': False}


@pytest.mark.worker  # a fresh interpreter
def test_importing_the_integration_package_connects_no_celery_signal():
    assert import_in_fresh_interpreter('myapp.celery_integration') == \
        {'connected': [], 'pyramid_celery': False}


def test_configuring_twice_connects_each_handler_once(module_ini):
    get_app(module_ini)
    counts = {signal: len(signal.receivers) for signal in
              (signals.worker_ready, signals.task_revoked,
               signals.beat_init, signals.beat_embedded_init)}
    get_app(module_ini)
    assert {signal: len(signal.receivers) for signal in counts} == counts


# -- import cycles ---------------------------------------------------------

def module_name(path):
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def myapp_modules():
    return {module_name(path): path for path in PACKAGE_DIR.rglob('*.py')
            if 'alembic' not in path.parts}


def imported_modules(name, path, modules):
    """The myapp modules that ``name`` imports, anywhere in its code."""
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')
                anchor = anchor[:len(anchor) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            # ``from package import module`` imports the module.
            targets = [f'{base}.{alias.name}'
                       if f'{base}.{alias.name}' in modules else base
                       for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in modules)
    found.discard(name)
    return found


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(module, trail):
        state[module] = 'open'
        for imported in sorted(graph[module]):
            if state.get(imported) == 'open':
                return trail[trail.index(imported):] + [imported]
            if imported not in state:
                cycle = visit(imported, trail + [imported])
                if cycle:
                    return cycle
        state[module] = 'done'
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [module])
            if cycle:
                return cycle
    return None


def test_no_import_cycles_not_even_inside_functions():
    modules = myapp_modules()
    graph = {name: imported_modules(name, path, modules)
             for name, path in modules.items()}
    assert graph['myapp.jobs.api'] >= {'myapp.jobs.actions'}  # it sees them
    assert find_cycle(graph) is None, ' -> '.join(find_cycle(graph))


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == \
        ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) is None
