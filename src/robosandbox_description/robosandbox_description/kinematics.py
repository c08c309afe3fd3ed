"""Forward kinematics of a robot description from its URDF, without MuJoCo.

The URDF is parsed by ROS's own ``urdf_parser_py`` (urdfdom_py); the chain is
composed here, as robot_state_publisher does: each joint's origin, then its
motion about (revolute, continuous) or along (prismatic) its axis. Poses are
4x4 homogeneous transforms in the URDF root link's frame (REP-103: metres,
radians, right-handed).

Loading checks the URDF against the sidecar: every commanded joint exists and
moves, the sidecar's limits lie inside the URDF's, and the end-effector link
exists. The sidecar stays the authority; the URDF may only be wider.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from robosandbox_description.robot import ModelMismatchError, require_model, RobotDescription

# Slack for limits written with fewer digits in one file than in the other.
LIMIT_TOLERANCE = 1e-4
MOVING = ('revolute', 'continuous', 'prismatic')


def _quiet_urdf_parser():
    # urdf_parser_py prints every tag it does not model (transmissions'
    # hardwareInterface, Gazebo extensions) to stderr; none matters here.
    from urdf_parser_py.xml_reflection import core
    core.on_error = lambda message: None
    from urdf_parser_py import urdf
    return urdf


def rotation(rpy) -> np.ndarray:
    """URDF's fixed-axis roll, pitch, yaw: R = Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' rotation about a unit axis."""
    x, y, z = axis
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


@dataclass(frozen=True)
class Joint:
    """One URDF joint: what placing its child link takes."""

    name: str
    kind: str
    parent: str
    child: str
    origin: np.ndarray      # 4x4, parent link -> joint frame at zero
    axis: np.ndarray        # unit vector in the joint frame


class UrdfKinematics:
    """Link poses of a robot description's URDF for given joint positions."""

    def __init__(self, robot: RobotDescription):
        urdf = _quiet_urdf_parser()
        path = require_model(robot, 'urdf')
        try:
            model = urdf.URDF.from_xml_string(path.read_bytes())
        except Exception as e:  # the parser raises bare Exceptions and lxml errors
            raise ModelMismatchError(f'{path}: cannot parse URDF: {e}') from None
        self.robot = robot
        self.root: str = model.get_root()
        self._joints: list[Joint] = []
        for joint in model.joints:
            origin = np.eye(4)
            if joint.origin is not None:
                origin[:3, :3] = rotation(joint.origin.rpy or (0, 0, 0))
                origin[:3, 3] = joint.origin.xyz or (0, 0, 0)
            axis = np.array(joint.axis if joint.axis is not None else (1.0, 0.0, 0.0), dtype=float)
            if joint.type in MOVING:
                axis /= np.linalg.norm(axis)
            self._joints.append(Joint(joint.name, joint.type, joint.parent, joint.child, origin, axis))
        self._order = self._topological()
        self.links: tuple[str, ...] = (self.root,) + tuple(j.child for j in self._order)
        self._check(model)

    def _topological(self) -> list[Joint]:
        """Joints ordered so that each parent link is placed before its child."""
        by_parent: dict[str, list[Joint]] = {}
        for joint in self._joints:
            by_parent.setdefault(joint.parent, []).append(joint)
        order, frontier = [], [self.root]
        while frontier:
            link = frontier.pop()
            for joint in by_parent.get(link, []):
                order.append(joint)
                frontier.append(joint.child)
        return order

    def _check(self, model) -> None:
        where, robot = self.robot.where, self.robot
        joints = {j.name: j for j in model.joints}
        for name in robot.joints:
            joint = joints.get(name)
            if joint is None:
                raise ModelMismatchError(f'{where}: joint {name!r} is not in the URDF {robot.urdf_path}')
            if joint.type not in MOVING:
                raise ModelMismatchError(f'{where}: URDF joint {name!r} is {joint.type}, it cannot be commanded')
            limit, ours = joint.limit, robot.limits[name]
            if limit is None or joint.type == 'continuous':
                continue
            if ours.lower < limit.lower - LIMIT_TOLERANCE or ours.upper > limit.upper + LIMIT_TOLERANCE:
                raise ModelMismatchError(
                    f'{where}: limits of {name!r} [{ours.lower}, {ours.upper}] go beyond the URDF\'s '
                    f'[{limit.lower}, {limit.upper}]')
            if limit.velocity and ours.velocity > limit.velocity + LIMIT_TOLERANCE:
                raise ModelMismatchError(
                    f'{where}: velocity limit of {name!r} {ours.velocity} exceeds the URDF\'s {limit.velocity}')
        link = robot.end_effector.link
        if link and link not in self.links:
            raise ModelMismatchError(f'{where}: end-effector link {link!r} is not in the URDF {robot.urdf_path}')

    @property
    def joints(self) -> tuple[Joint, ...]:
        """Every joint, each parent link placed before its child."""
        return tuple(self._order)

    @cached_property
    def moving_joints(self) -> tuple[str, ...]:
        return tuple(j.name for j in self._order if j.kind in MOVING)

    @staticmethod
    def _transform(joint: Joint, q: float) -> np.ndarray:
        """Parent link -> child link of ``joint`` at position ``q``."""
        motion = np.eye(4)
        if joint.kind in ('revolute', 'continuous'):
            motion[:3, :3] = axis_angle(joint.axis, q)
        elif joint.kind == 'prismatic':
            motion[:3, 3] = joint.axis * q
        return joint.origin @ motion

    def joint_transforms(self, positions: Mapping[str, float]) -> list[tuple[str, str, np.ndarray]]:
        """``(parent link, child link, parent -> child)`` of every moving joint, as
        robot_state_publisher puts them on /tf; joints not given stand at zero."""
        return [(j.parent, j.child, self._transform(j, float(positions.get(j.name, 0.0))))
                for j in self._order if j.kind in MOVING]

    @cached_property
    def fixed_transforms(self) -> list[tuple[str, str, np.ndarray]]:
        """The same for fixed joints: /tf_static."""
        return [(j.parent, j.child, j.origin) for j in self._order if j.kind not in MOVING]

    def link_poses(self, positions: Mapping[str, float]) -> dict[str, np.ndarray]:
        """Pose of every link in the root frame; joints not given stand at zero."""
        poses = {self.root: np.eye(4)}
        for joint in self._order:
            poses[joint.child] = poses[joint.parent] @ self._transform(
                joint, float(positions.get(joint.name, 0.0)))
        return poses

    def end_effector_pose(self, positions: Mapping[str, float]) -> np.ndarray:
        """Pose of the sidecar's end-effector link in the root frame."""
        link = self.robot.end_effector.link
        if not link:
            raise ModelMismatchError(f'{self.robot.where}: end_effector has no URDF link')
        return self.link_poses(positions)[link]

    def reach(self, positions: Mapping[str, float], target: np.ndarray, joints: Sequence[str],
              hold_pitch: bool = False, tolerance: float = 2e-4, iterations: int = 100,
              damping: float = 1e-3) -> dict[str, float] | None:
        """Joint positions that put the end effector at ``target`` (xyz, m, root frame),
        moving only ``joints`` from ``positions`` and keeping within the description's
        limits; None when it is out of reach (no solution within ``tolerance``).
        ``hold_pitch`` also keeps the angle of the end effector's z axis (along the
        fingers) to the horizontal, as it is at ``positions``.

        Damped least squares on a finite-difference Jacobian: a few small steps from a
        nearby pose, as jogging needs, not a global solver."""
        q = {name: float(value) for name, value in positions.items()}
        lower = np.array([self.robot.limits[j].lower for j in joints])
        upper = np.array([self.robot.limits[j].upper for j in joints])

        def task(x: np.ndarray) -> np.ndarray:
            pose = self.end_effector_pose({**q, **dict(zip(joints, x))})
            if not hold_pitch:
                return pose[:3, 3]
            # radians weighted as 0.1 m: a 1 mm miss weighs what a 0.01 rad tilt does
            return np.append(pose[:3, 3], 0.1 * np.arcsin(np.clip(pose[2, 2], -1.0, 1.0)))

        x = np.array([q[j] for j in joints])
        goal = np.asarray(target, dtype=float)
        if hold_pitch:
            goal = np.append(goal, task(x)[3])
        for _ in range(iterations):
            here = task(x)
            error = goal - here
            if np.linalg.norm(error[:3]) <= tolerance and np.linalg.norm(error[3:]) <= 0.1 * 1e-3:
                return {**q, **dict(zip(joints, x))}
            jacobian = np.empty((len(goal), len(joints)))
            for i in range(len(joints)):
                nudged = x.copy()
                nudged[i] += 1e-6
                jacobian[:, i] = (task(nudged) - here) / 1e-6
            step = jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + damping**2 * np.eye(len(goal)), error)
            x = np.clip(x + step, lower, upper)
        return None
