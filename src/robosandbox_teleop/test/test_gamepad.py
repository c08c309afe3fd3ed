"""The gamepad: LeRobot's controller (pygame) is optional, and said so when missing; with a
controller, stick deflections move the streamed end effector at the set speed."""

from __future__ import annotations

import importlib.util
import threading
import time

import numpy as np
import pytest
import rclpy
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from robosandbox_cli.processes import NodeProcess
from robosandbox_description.kinematics import UrdfKinematics
from robosandbox_description.robot import load_robot

ROBOT = load_robot('so101')
HOME = np.array([ROBOT.home[j] for j in ROBOT.joints])


@pytest.mark.skipif(importlib.util.find_spec('pygame') is not None, reason='pygame is installed here')
def test_without_pygame_the_gamepad_node_says_how_to_install_it():
    node = NodeProcess('robosandbox_teleop', 'teleop_gamepad')
    assert node.child.process.wait(120) == 1
    node.child.reader.join(timeout=5.0)
    assert "pip install 'lerobot[gamepad]'" in node.output.text(), node.output.text()
    node.close()


class Stick:
    """LeRobot's controller interface, pushed forward for ``seconds`` after ``go``."""

    running = True

    def __init__(self, seconds: float):
        self.seconds, self.since = seconds, None
        self.go = threading.Event()

    def update(self):
        if self.go.is_set() and self.since is None:
            self.since = time.monotonic()

    def get_deltas(self):
        pushed = self.since is not None and time.monotonic() - self.since < self.seconds
        return (1.0, 0.0, 0.0) if pushed else (0.0, 0.0, 0.0)

    def gripper_command(self):
        return 'stay'

    def get_episode_end_status(self):
        return None

    def stop(self):
        pass


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


def test_a_stick_pushed_forward_moves_the_streamed_end_effector_forward_at_the_set_speed(ros):
    from robosandbox_teleop.gamepad_node import GamepadNode

    stick = Stick(seconds=1.0)
    gamepad = GamepadNode(controller=stick, parameter_overrides=[
        rclpy.parameter.Parameter('speed', value=0.05)])
    follower = rclpy.create_node('follower')
    targets = []
    follower.create_subscription(JointTrajectory, 'joint_trajectory',
                                 lambda m: targets.append(np.array(m.points[0].positions)), 100)
    states = follower.create_publisher(JointState, 'joint_states', 10)
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(gamepad)
    executor.add_node(follower)

    def spin(condition, timeout):
        # The follower holds HOME, 20 times a second; every callback is taken at once
        # (spin_once takes one: publishing each turn would leave a growing backlog).
        deadline, published = time.monotonic() + timeout, 0.0
        while time.monotonic() < deadline and not condition():
            if time.monotonic() - published > 0.05:
                states.publish(JointState(name=list(ROBOT.joints), position=HOME.tolist()))
                published = time.monotonic()
            executor.spin_once(timeout_sec=0.005)
        return condition()

    try:
        assert spin(lambda: len(targets) > 10, 20.0)
        kinematics = UrdfKinematics(ROBOT)
        start = kinematics.end_effector_pose(dict(zip(ROBOT.joints, targets[-1])))[:3, 3]
        stick.go.set()
        spin(lambda: stick.since is not None and time.monotonic() - stick.since > 1.5, 20.0)
        end = kinematics.end_effector_pose(dict(zip(ROBOT.joints, targets[-1])))[:3, 3]
        np.testing.assert_allclose(end - start, [0.05, 0.0, 0.0], atol=0.01)   # 1 s at 0.05 m/s
    finally:
        executor.shutdown()
        gamepad.destroy_node()
        follower.destroy_node()
