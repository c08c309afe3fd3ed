"""Fixtures for the hardware tests: an emulated bus in this process, the node in its own."""

from __future__ import annotations

import json
from typing import Callable

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionClient
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robosandbox_bringup.processes import NodeProcess
from robosandbox_control.spinning import spin_until, wait_future
from robosandbox_hw.emulator import calibration_for, EmulatedBus
from robosandbox_msgs.action import FollowJointTrajectory
from robosandbox_sim.kinematics import ArmKinematics

JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')


@pytest.fixture(scope='session')
def kinematics():
    return ArmKinematics('so101')


@pytest.fixture(scope='session')
def camera_video(tmp_path_factory):
    """A short 320x240 video file: a camera device for the node without a camera."""
    import cv2
    path = tmp_path_factory.mktemp('camera') / 'front.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 30, (320, 240))
    for i in range(30):
        image = np.zeros((240, 320, 3), np.uint8)
        image[:, :, 1] = (np.arange(320) + 8 * i) % 256
        writer.write(image)
    writer.release()
    return path


@pytest.fixture
def calibration_file(tmp_path, kinematics):
    path = tmp_path / 'so101.json'
    path.write_text(json.dumps(calibration_for(JOINTS, kinematics.joint_lower, kinematics.joint_upper),
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


class ArmClient:
    """What a user's code sees of an arm backend: topics, the action, services."""

    def __init__(self, name: str = 'so101'):
        self.node = rclpy.create_node('arm_test_client')
        self.states: list[JointState] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.node.create_subscription(JointState, 'joint_states', self.states.append, 100)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, 10)
        self.trajectories = self.node.create_publisher(JointTrajectory, 'joint_trajectory', 10)
        self.action = ActionClient(self.node, FollowJointTrajectory, 'follow_joint_trajectory')
        self.services = {s: self.node.create_client(Trigger, s) for s in (
            'home', f'{name}/emergency_stop', f'{name}/enable')}

    def close(self):
        self.node.destroy_node()

    def spin(self, seconds: float) -> None:
        spin_until(self.node, lambda: False, seconds)

    def wait(self, condition, timeout: float, what: str | Callable[[], str] = '') -> None:
        """Spin until ``condition()``; else fail with ``what`` (a callable: read then)."""
        assert spin_until(self.node, condition, timeout), what() if callable(what) else what

    def position(self) -> np.ndarray:
        assert self.states, 'no joint_states received'
        return np.array(self.states[-1].position)

    def call(self, service: str, timeout: float = 60.0) -> Trigger.Response:
        client = self.services[service]
        assert client.wait_for_service(timeout_sec=20.0), service
        return wait_future(self.node, client.call_async(Trigger.Request()), timeout)

    def stream(self, positions, seconds: float, names=JOINTS) -> None:
        sec, frac = divmod(seconds, 1.0)
        self.trajectories.publish(JointTrajectory(joint_names=list(names), points=[
            JointTrajectoryPoint(positions=[float(v) for v in positions],
                                 time_from_start=Duration(sec=int(sec), nanosec=int(frac * 1e9)))]))

    def follow(self, positions, seconds: float, names=JOINTS, time_tolerance: float = 10.0):
        sec, frac = divmod(seconds, 1.0)
        goal = FollowJointTrajectory.Goal(trajectory=JointTrajectory(
            joint_names=list(names), points=[JointTrajectoryPoint(
                positions=[float(v) for v in positions],
                time_from_start=Duration(sec=int(sec), nanosec=int(frac * 1e9)))]))
        goal.goal_time_tolerance = Duration(sec=int(time_tolerance))
        assert self.action.wait_for_server(timeout_sec=20.0)
        handle = wait_future(self.node, self.action.send_goal_async(goal), 20.0)
        assert handle.accepted
        return wait_future(self.node, handle.get_result_async(), seconds + time_tolerance + 30.0).result

    def bus_status(self):
        """The latest so101 servo-bus diagnostics status, or None."""
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name == 'so101: servo bus':
                    return status
        return None


@pytest.fixture(scope='session')
def arm_client():
    """The client class, for modules that start their own backend."""
    return ArmClient


def start_so101(port, calibration_file, *params) -> NodeProcess:
    return NodeProcess('robosandbox_hw', 'so101_node', f'port:={port}',
                       f'calibration_file:={calibration_file}', *params)


@pytest.fixture
def arm(ros, emulator, calibration_file):
    """Start the hardware node on the emulator with extra parameters; a client for it."""
    started = []

    def start(*params, wait: bool = True):
        process = start_so101(emulator.port, calibration_file, *params)
        client = ArmClient()
        started.append((process, client))
        if wait and not spin_until(client.node, lambda: client.states, 60.0):
            pytest.fail(f'no joint_states from so101_node in 60 s:\n{process.abort()}')
        return process, client
    yield start
    for process, client in started:
        client.close()
        process.close()
