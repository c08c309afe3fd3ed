"""Jogging the arm from a keyboard or a gamepad, free of ROS and of MuJoCo.

Each key (or gamepad tick) moves the target the follower is streamed: the end effector a step
in x, y or z of the robot's base frame (REP-103: x forward, y left, z up;
inverse kinematics on the robot description's URDF through the pan, shoulder,
elbow and wrist flex, holding the gripper's pitch and leaving its roll), one
joint a step,
the gripper open or closed, or the description's home pose. A step that
cannot be reached within the limits is refused and the target stays.
The keys avoid the recording keys (``session.KEYS``): one terminal serves both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robosandbox_description.kinematics import UrdfKinematics
from robosandbox_description.robot import RobotDescription

CARTESIAN = {'i': (0, +1), 'k': (0, -1),      # x: forward / back
             'j': (1, +1), 'l': (1, -1),      # y: left / right
             'u': (2, +1), 'o': (2, -1)}      # z: up / down
JOINT_KEYS = {'1': 0, '2': 1, '3': 2, '4': 3, '5': 4, '6': 5}   # select the joint '+' / '-' jog
HELP = ('jog: i/k x, j/l y, u/o z (end effector) | 1-6 pick a joint, +/- move it | '
        '[ close, ] open the gripper | h home')


@dataclass
class JogConfig:
    step: float = 0.01            # m per Cartesian key
    joint_step: float = 0.05      # rad per joint key


class Jog:
    """Targets (rad, in ``robot.joints`` order) from keys and end-effector moves."""

    def __init__(self, robot: RobotDescription, config: JogConfig | None = None):
        self.robot, self.config = robot, config or JogConfig()
        self.kinematics = UrdfKinematics(robot)
        self.joints = robot.joints
        # Pan, shoulder, elbow and wrist flex place the end effector at its pitch;
        # the wrist roll and the gripper stay as jogged.
        self.reach_joints = tuple(robot.arm_joints[:4])
        self.home = np.array([robot.home[j] for j in self.joints])
        self.selected = 0

    def end_effector(self, target: np.ndarray) -> np.ndarray:
        """xyz, m, of the end effector at ``target`` (root frame)."""
        return self.kinematics.end_effector_pose(dict(zip(self.joints, target)))[:3, 3]

    def press(self, key: str, target: np.ndarray) -> tuple[np.ndarray | None, str]:
        """The new target for ``key`` from ``target`` (None: unchanged), and a line for the operator."""
        target = np.asarray(target, dtype=float)
        if key in CARTESIAN:
            axis, sign = CARTESIAN[key]
            delta = np.zeros(3)
            delta[axis] = sign * self.config.step
            return self.move(target, delta)
        if key in JOINT_KEYS:
            self.selected = JOINT_KEYS[key]
            return None, f'joint {self.joints[self.selected]} selected: +/- moves it'
        if key in '+-=':
            moved = target.copy()
            moved[self.selected] += (-1 if key == '-' else 1) * self.config.joint_step
            return self._within(moved, self.joints[self.selected])
        if key in '[]':
            return self.gripper(target, key == ']')
        if key == 'h':
            return self.home.copy(), 'home'
        return None, ''

    def move(self, target: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray | None, str]:
        """The target with the end effector moved by ``delta`` (xyz, m, base frame), or None
        (out of reach), and a line for the operator."""
        target = np.asarray(target, dtype=float)
        goal = self.end_effector(target) + np.asarray(delta, dtype=float)
        solved = self.kinematics.reach(dict(zip(self.joints, target)), goal, self.reach_joints, hold_pitch=True)
        if solved is None:
            return None, f'{np.round(delta, 3).tolist()} m is out of reach: not moved'
        return np.array([solved[j] for j in self.joints]), f'end effector at {np.round(goal, 3).tolist()} m'

    def gripper(self, target: np.ndarray, open_: bool) -> tuple[np.ndarray, str]:
        moved = np.array(target, dtype=float)
        moved[self.joints.index(self.robot.gripper_joint)] = \
            self.robot.gripper_open if open_ else self.robot.gripper_closed
        return moved, 'gripper ' + ('open' if open_ else 'closed')

    def _within(self, moved: np.ndarray, joint: str) -> tuple[np.ndarray | None, str]:
        i = self.joints.index(joint)
        limit = self.robot.limits[joint]
        if not limit.lower <= moved[i] <= limit.upper:
            return None, f'{joint} at its limit: not moved'
        return moved, f'{joint} {moved[i]:+.2f} rad'
