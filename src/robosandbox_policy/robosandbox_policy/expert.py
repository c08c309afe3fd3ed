"""A scripted pick-and-place expert: top-down grasps planned with IK on the MuJoCo model.

It needs what a sim publishes and a real arm does not: the object poses of the
task status. It is the default policy of ``sim_policy`` and the demonstrator
that ``sim_record`` records.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import mujoco
import numpy as np

from robosandbox_description.robot import RobotDescription
from robosandbox_policy.observation import Observation
from robosandbox_policy.policy import PolicyError
from robosandbox_sim.kinematics import ArmKinematics


@dataclass
class ExpertConfig:
    object: str = 'cube'
    approach_height: float = 0.07      # m above the object before descending
    grasp_depth: float = 0.003         # m the fingertips go below the object's centre
    lift_height: float = 0.10          # m above the object's start when lifted
    jaw_offset: float = 0.012          # m from the fixed jaw pad to the object's centre
    speed: float = 0.25                # m/s of the end-effector set point
    slow_speed: float = 0.08           # m/s while descending onto the object and lifting
    gripper_time: float = 0.6          # s to open or close the gripper
    # rad the arm's targets keep inside every joint limit. A policy that imitates
    # a demonstration pressed against a limit overshoots it by a few hundredths
    # of a radian (measured: wrist_flex, 0.02-0.05 rad), which the policy node
    # refuses; demonstrations that keep clear of the limits leave it that room.
    limit_margin: float = 0.05
    # rad the jaws may turn away from the arm's radial direction before the grasp
    # moves to the object's next face (see PickPlaceExpert._jaw_yaw).
    max_jaw_turn: float = 1.5


def _quat(rotation: np.ndarray) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, rotation.reshape(-1))
    return q


def _slerp_rotation(r0: np.ndarray, r1: np.ndarray, s: float) -> np.ndarray:
    """Rotation matrix a fraction ``s`` of the way from ``r0`` to ``r1``."""
    q0, q1 = _quat(r0), _quat(r1)
    if np.dot(q0, q1) < 0:
        q1 = -q1
    angle = math.acos(min(1.0, float(np.dot(q0, q1))))
    if angle < 1e-6:
        q = q1
    else:
        q = (math.sin((1 - s) * angle) * q0 + math.sin(s * angle) * q1) / math.sin(angle)
    out = np.zeros(9)
    mujoco.mju_quat2Mat(out, q / np.linalg.norm(q))
    return out.reshape(3, 3)


def _yaw(quat_wxyz: np.ndarray) -> float:
    w, x, y, z = quat_wxyz
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


class PickPlaceExpert:
    """Phases: open, approach (above the object), descend, close, lift, hold.

    The end-effector set point moves along straight lines at a bounded speed and
    each tick's joint targets come from IK warm-started at the previous ones, so
    the commanded motion is smooth whatever the control rate.
    """

    image_topics: dict[str, str] = {}
    needs_object_poses = True
    fps = None

    def __init__(self, robot: RobotDescription | str = 'so101', config: ExpertConfig | None = None):
        self.config = config or ExpertConfig()
        self.kinematics = ArmKinematics(robot)
        robot = self.kinematics.robot
        self.joint_names = robot.joints
        self._n_arm = len(robot.arm_joints)
        self._open = robot.gripper_open
        self._closed = robot.gripper_closed
        self.reset()

    def reset(self) -> None:
        self.done = False
        self.phase = 'open'
        self._phase_start = None
        self._setpoint = None
        self._q = None
        self._grasp = None
        self._gripper = None

    # --- planning -----------------------------------------------------------

    def _plan(self, obs: Observation) -> None:
        """Fix the grasp from the object's pose at the start of the run."""
        cfg = self.config
        if cfg.object not in obs.object_poses:
            raise PolicyError(f'the scripted expert needs the pose of {cfg.object!r} from the task '
                              f'status; it has {sorted(obs.object_poses) or "none"}')
        xyz, quat = obs.object_poses[cfg.object]
        jaw_yaw = self._jaw_yaw(xyz, _yaw(quat))
        x_axis = np.array([math.cos(jaw_yaw), math.sin(jaw_yaw), 0.0])
        z_axis = np.array([0.0, 0.0, -1.0])
        rotation = np.column_stack([x_axis, np.cross(z_axis, x_axis), z_axis])
        grasp = np.asarray(xyz, dtype=float) + cfg.jaw_offset * x_axis
        grasp[2] -= cfg.grasp_depth
        above = grasp + [0.0, 0.0, cfg.approach_height]
        lifted = grasp + [0.0, 0.0, cfg.lift_height]
        self._grasp = dict(rotation=rotation, approach=above, descend=grasp, lift=lifted)

    def _jaw_yaw(self, xyz: np.ndarray, yaw: float) -> float:
        """The direction (world yaw, rad) along which the jaws close on the object.

        The rule is a continuous function of the object's yaw wherever the wrist
        allows, because a policy learns it from the demonstrations: the jaws close
        along the object's -x face (the one a yaw-0 object shows the arm), and move
        to another face only when that one needs the jaws turned more than
        ``max_jaw_turn`` from the arm's radial direction. Choosing instead the face
        nearest the radial direction (the least wrist roll) switches the grasp by a
        quarter turn where the object sits at 45 degrees to the arm: imitations
        trained on such demonstrations put the jaws between the two and miss
        (12 of 14 seeds near that switch failed).
        """
        radial = math.atan2(-xyz[1], -xyz[0])
        faces = [yaw + math.pi + k * math.pi / 2 for k in (0, 1, -1, 2)]

        def turn(jaw: float) -> float:
            return abs(math.remainder(jaw - radial, 2 * math.pi))

        return next((jaw for jaw in faces if turn(jaw) <= self.config.max_jaw_turn),
                    min(faces, key=turn))

    def _advance(self, phase: str, now: float) -> None:
        self.phase = phase
        self._phase_start = now

    def _move_setpoint(self, goal: np.ndarray, speed: float, dt: float) -> bool:
        delta = goal - self._setpoint
        dist = float(np.linalg.norm(delta))
        step = speed * dt
        if dist <= step:
            self._setpoint = goal.copy()
            return True
        self._setpoint = self._setpoint + delta * (step / dist)
        return False

    # --- control ------------------------------------------------------------

    def act(self, obs: Observation) -> np.ndarray:
        """Joint targets (rad, ``joint_names`` order) for this tick."""
        cfg = self.config
        now = obs.time
        q = obs.joint_positions
        if self._grasp is None:
            self._plan(obs)
            self._q = q[:self._n_arm].copy()
            self._setpoint, self._start_rotation = self.kinematics.forward(self._q)
            self._approach_from = self._setpoint.copy()
            self._rotation = self._start_rotation
            self._gripper = float(q[self._n_arm])
            self._last_time = now
            self._advance('open', now)
        dt = max(now - self._last_time, 0.0)
        self._last_time = now
        elapsed = now - self._phase_start

        if self.phase == 'open':
            self._gripper = self._open
            if elapsed >= cfg.gripper_time:
                self._advance('approach', now)
        elif self.phase == 'approach':
            if self._move_setpoint(self._grasp['approach'], cfg.speed, dt):
                self._advance('descend', now)
            # Turn the gripper down gradually over the approach, not in one tick.
            total = np.linalg.norm(self._grasp['approach'] - self._approach_from)
            left = np.linalg.norm(self._grasp['approach'] - self._setpoint)
            progress = 1.0 if total < 1e-9 else 1.0 - left / total
            self._rotation = _slerp_rotation(self._start_rotation, self._grasp['rotation'], progress)
        elif self.phase == 'descend':
            if self._move_setpoint(self._grasp['descend'], cfg.slow_speed, dt):
                self._advance('close', now)
        elif self.phase == 'close':
            self._gripper = self._closed
            if elapsed >= cfg.gripper_time:
                self._advance('lift', now)
        elif self.phase == 'lift':
            if self._move_setpoint(self._grasp['lift'], cfg.slow_speed, dt):
                self._advance('hold', now)

        if self.phase not in ('open', 'approach'):
            self._rotation = self._grasp['rotation']
        if self.phase != 'open':
            self._q, _ = self.kinematics.solve(self._setpoint, self._rotation, self._q,
                                               limit_margin=cfg.limit_margin)
        return np.append(self._q, self._gripper)

    def close(self) -> None:
        pass
