"""Test-session isolation: no network, a test-only ROS domain, offline hubs."""

import os
import sys

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
