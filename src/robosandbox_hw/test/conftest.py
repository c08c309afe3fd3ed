"""Fixtures for the hardware tests: an emulated bus in this process, the node in its own."""

from __future__ import annotations

import json

import pytest
import rclpy

from robosandbox_cli.processes import NodeProcess
from robosandbox_control.clients import ArmClient
from robosandbox_control.spinning import spin_until
from robosandbox_control.testing import write_camera_video
from robosandbox_description.robot import load_robot
from robosandbox_hw.emulator import calibration_for, EmulatedBus

JOINTS = load_robot('so101').joints


@pytest.fixture(scope='session')
def robot():
    return load_robot('so101')


@pytest.fixture(scope='session')
def camera_video(tmp_path_factory):
    """A 320x240 video file: a camera device for the node without a camera."""
    return write_camera_video(tmp_path_factory.mktemp('camera') / 'front.avi')


@pytest.fixture
def calibration_file(tmp_path, robot):
    path = tmp_path / 'so101.json'
    path.write_text(json.dumps(calibration_for(JOINTS, robot.lower, robot.upper),
                               indent=4))
    return path


@pytest.fixture
def emulator(tmp_path):
    with EmulatedBus(link=tmp_path / 'ttySO101') as bus:
        yield bus


@pytest.fixture(scope='module')
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


class So101Client(ArmClient):
    """A user's client of the hardware node, which reads the servo bus's diagnostics too."""

    def __init__(self):
        super().__init__('arm_test_client', JOINTS)

    def bus_status(self):
        return self.status('so101: servo bus')


@pytest.fixture(scope='session')
def arm_client():
    """The client class, for modules that start their own backend."""
    return So101Client


def start_so101(port, calibration_file, *params) -> NodeProcess:
    return NodeProcess('robosandbox_hw', 'so101_node', f'port:={port}',
                       f'calibration_file:={calibration_file}', *params)


@pytest.fixture
def arm(ros, emulator, calibration_file):
    """Start the hardware node on the emulator with extra parameters; a client for it."""
    started = []

    def start(*params, wait: bool = True):
        process = start_so101(emulator.port, calibration_file, *params)
        client = So101Client()
        started.append((process, client))
        if wait and not spin_until(client.node, lambda: client.states, 60.0):
            pytest.fail(f'no joint_states from so101_node in 60 s:\n{process.abort()}')
        return process, client
    yield start
    for process, client in started:
        client.close()
        process.close()


def pytest_collection_modifyitems(items):
    """Tests that start the hardware node are node tests (see pytest.ini)."""
    for item in items:
        if {'arm', 'ros'} & set(getattr(item, 'fixturenames', ())):
            item.add_marker(pytest.mark.nodes)
