"""The package layering drawn in ARCHITECTURE.md, checked on the code.

Each package may import only packages of lower layers (and declares them in
its package.xml, so colcon and rosdep see the same graph); what needs no
physics must not load MuJoCo.
"""

from __future__ import annotations

import ast
from pathlib import Path
import re
import subprocess
import sys

import pytest

SRC = Path(__file__).resolve().parents[2]

# Lower layers first; a package imports only from layers below its own.
LAYERS = {
    'robosandbox_msgs': 0, 'robosandbox_description': 0, 'robosandbox_cli': 0,
    'robosandbox_control': 1,
    'robosandbox_sim': 2, 'robosandbox_hw': 2,
    'robosandbox_data': 3, 'robosandbox_teleop': 3,
    'robosandbox_policy': 4,      # replays read episode bags through robosandbox_data
    'robosandbox_viewer': 4,      # shows episode bags (robosandbox_data) and task files (robosandbox_sim)
    'robosandbox_bringup': 5,
}


def _imports(package: str) -> dict[str, set[str]]:
    """robosandbox packages imported by each module of ``package`` (lazy imports too)."""
    found = {}
    for path in (SRC / package / package).rglob('*.py'):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split('.')[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split('.')[0])
        found[str(path.relative_to(SRC))] = {n for n in names if n.startswith('robosandbox_')} - {package}
    return found


def test_every_package_is_in_a_layer():
    packages = {p.parent.name for p in SRC.glob('*/package.xml')}
    assert packages == set(LAYERS)


@pytest.mark.parametrize('package', sorted(p for p in LAYERS if (SRC / p / p).is_dir()))
def test_no_package_imports_one_drawn_above_it(package):
    declared = set(re.findall(r'<(?:depend|exec_depend)>(robosandbox_\w+)<',
                              (SRC / package / 'package.xml').read_text()))
    for module, imported in _imports(package).items():
        for other in imported:
            assert LAYERS[other] < LAYERS[package], f'{module} imports {other}, drawn at or above it'
            assert other in declared, f'{module} imports {other}, not in {package}/package.xml'


def test_what_needs_no_physics_does_not_load_mujoco():
    # The hardware stack, the data tools and the non-simulated policies run
    # on machines without MuJoCo (or where its import would cost seconds).
    modules = ['robosandbox_hw.so101_node', 'robosandbox_hw.emulator_node',
               'robosandbox_data.episodes.export', 'robosandbox_data.recorder_node',
               'robosandbox_policy.policy_node', 'robosandbox_policy.lerobot_policy',
               'robosandbox_description.kinematics', 'robosandbox_cli.main']
    code = '; '.join(f'import {m}' for m in modules) + '''
from robosandbox_description.robot import load_robot
from robosandbox_policy.factory import make_policy
make_policy('hold', load_robot('so101'))
import sys
print(sorted(m for m in sys.modules if m.split('.')[0] == 'mujoco'))
'''
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == '[]', out.stdout
