"""Test-session isolation: no network, a test-only ROS domain, offline hubs."""

import os
from pathlib import Path
import sys

import pytest

# A domain of our own per session, so parallel runs and live sims don't mix;
# except when the contract suite is pointed at the user's running backend.
if os.environ.get('ROBOSANDBOX_CONTRACT_BACKEND') != 'running':
    os.environ['ROS_DOMAIN_ID'] = str(100 + os.getpid() % 100)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ['HF_HUB_OFFLINE'] = '1'
os.environ['PYTHONFAULTHANDLER'] = '1'     # a hung node aborted by a test shows its stacks
os.environ['MUJOCO_GL'] = os.environ.get('MUJOCO_GL', 'egl')
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
os.environ.setdefault('FASTDDS_BUILTIN_TRANSPORTS', 'LARGE_DATA')
prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
if sys.prefix not in prefixes:
    os.environ['AMENT_PREFIX_PATH'] = os.pathsep.join(prefixes + [sys.prefix])


def _children() -> list[str]:
    """Command lines of this process's live children (Linux /proc)."""
    me, found = str(os.getpid()), []
    for status in Path('/proc').glob('[0-9]*/status'):
        try:
            fields = dict(line.split(':\t', 1) for line in status.read_text().splitlines() if ':\t' in line)
            if fields.get('PPid', '').strip() == me and fields.get('State', '')[:1] != 'Z':
                found.append((status.parent / 'cmdline').read_bytes().replace(b'\0', b' ').decode()[:200])
        except (OSError, ValueError):
            continue                # the process ended while we looked
    return found


@pytest.fixture(autouse=True, scope='module')
def _reaped():
    """Every module reaps the processes it starts: a node left running answers the
    next module's clients (a second action server, stale joint_states)."""
    yield
    left = _children()
    assert not left, f'processes left running by this module: {left}'
