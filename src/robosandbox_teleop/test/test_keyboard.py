"""Jogging from the keyboard: each key's step on the robot description's kinematics (FK
checks the end effector), and teleop_keyboard driving the sim from a terminal (a pty)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rclpy

from robosandbox_cli.processes import NodeProcess
from robosandbox_description.kinematics import UrdfKinematics
from robosandbox_description.robot import load_robot
from robosandbox_teleop.jog import Jog, JogConfig

ROBOT = load_robot('so101')
HOME = np.array([ROBOT.home[j] for j in ROBOT.joints])


@pytest.mark.parametrize('key, axis, sign', [('i', 0, 1), ('k', 0, -1), ('j', 1, 1), ('l', 1, -1),
                                             ('u', 2, 1), ('o', 2, -1)])
def test_a_cartesian_key_moves_the_end_effector_by_the_step_and_nothing_else(key, axis, sign):
    jog = Jog(ROBOT, JogConfig(step=0.01))
    before = jog.end_effector(HOME)
    target, line = jog.press(key, HOME)
    assert target is not None, line
    moved = jog.end_effector(target) - before
    expected = np.zeros(3)
    expected[axis] = sign * 0.01
    np.testing.assert_allclose(moved, expected, atol=3e-4)
    pitch = [np.arcsin(jog.kinematics.end_effector_pose(dict(zip(ROBOT.joints, q)))[2, 2]) for q in (HOME, target)]
    assert abs(pitch[1] - pitch[0]) < 2e-3                # the gripper keeps its pitch
    assert np.all(target[4:] == HOME[4:])               # and its roll; the jaw stays


def test_joint_gripper_and_home_keys_and_what_is_refused():
    jog = Jog(ROBOT, JogConfig(step=0.5, joint_step=0.1))
    assert jog.press('i', HOME)[0] is None                # half a metre: out of reach, not moved
    assert 'selected' in jog.press('2', HOME)[1]
    target, _ = jog.press('+', HOME)
    assert target[1] == pytest.approx(HOME[1] + 0.1) and np.all(np.delete(target, 1) == np.delete(HOME, 1))
    at_limit = HOME.copy()
    at_limit[1] = ROBOT.limits['shoulder_lift'].upper
    assert jog.press('+', at_limit) == (None, 'shoulder_lift at its limit: not moved')
    gripper = ROBOT.joints.index(ROBOT.gripper_joint)
    assert jog.press(']', HOME)[0][gripper] == ROBOT.gripper_open
    assert jog.press('[', HOME)[0][gripper] == ROBOT.gripper_closed
    np.testing.assert_array_equal(jog.press('h', HOME + 0.2)[0], HOME)


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


def test_keyboard_jog_moves_the_sims_end_effector_by_the_commanded_steps(ros):
    from sensor_msgs.msg import JointState
    from robosandbox_control.spinning import spin_until

    kinematics = UrdfKinematics(ROBOT)
    keyboard, terminal = os.openpty()
    sim = NodeProcess('robosandbox_sim', 'sim_node', 'use_sim_time:=true', 'cameras:=[front]',
                      'camera_width:=64', 'camera_height:=48')
    jog = NodeProcess('robosandbox_teleop', 'teleop_keyboard', 'use_sim_time:=true',
                      f'keys:={os.ttyname(terminal)}', 'jog:=true', 'record:=false', 'step:=0.02')
    node = rclpy.create_node('jog_watcher')
    states = []
    node.create_subscription(JointState, 'joint_states', lambda m: states.append(np.array(m.position)), 10)

    def end_effector():
        return kinematics.end_effector_pose(dict(zip(ROBOT.joints, states[-1])))[:3, 3]

    def settled(seconds=1.0):
        spin_until(node, lambda: False, seconds)
        return end_effector()

    try:
        assert spin_until(node, lambda: states and 'jog: i/k' in jog.output.text(), 90.0), \
            sim.output.text() + jog.output.text()
        start = settled(2.0)
        for key in 'iiu':
            os.write(keyboard, key.encode())
            spin_until(node, lambda: False, 0.3)
        np.testing.assert_allclose(settled(2.0) - start, [0.04, 0.0, 0.02], atol=3e-3)
        os.write(keyboard, b'q')
        assert jog.child.process.wait(30) == 0, jog.output.text()
    finally:
        node.destroy_node()
        jog.close()
        sim.close()
        os.close(keyboard)
        os.close(terminal)
