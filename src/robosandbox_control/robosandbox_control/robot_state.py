"""robot_state_publisher's job, done inside a backend: the robot model and its TF.

A backend that owns the joints publishes, as robot_state_publisher would from
its joint_states (so RViz, MoveIt and tf2 users need nothing else running):

* ``robot_description`` (std_msgs/String, transient local): the URDF, its mesh
  paths made file:// URIs that RViz can load;
* ``/tf_static``: the URDF's fixed joints and the backend's own fixed frames
  (camera optical frames, ``world`` -> the robot's root in the sim);
* ``/tf``: one transform per moving joint, parent link -> child link, with the
  stamp of the joint_states they come from, plus the backend's moving frames
  (the sim's objects).

Frame names are the URDF's link names with ``frame_prefix`` in front (as
robot_state_publisher's parameter of that name), REP-103 units and axes. A
backend's own frames are taken as given: it prefixes the robot's (:meth:`frame`)
and leaves the scene's (``world``, objects) alone.
Publishing /tf is skipped while nothing subscribes to it: a free-running sim
pays for TF only when someone looks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import math
from pathlib import Path
import re

from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
import numpy as np
from rclpy.node import Node
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from robosandbox_control.qos import LATCHED_QOS, TF_QOS
from robosandbox_description.kinematics import UrdfKinematics
from robosandbox_description.robot import RobotDescription

Frame = tuple[str, str, np.ndarray]   # parent, child, 4x4 parent -> child

# A camera looks along +z with x right and y down in its optical frame (REP-103's
# "_optical" suffix); MuJoCo's cameras look along -z with y up: a half turn about x.
OPTICAL_FROM_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation matrix, w >= 0."""
    m = rotation
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = (0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s)
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = ((m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s)
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = ((m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s)
    q = np.asarray(q, dtype=float)
    q /= np.linalg.norm(q)
    return tuple(float(v) for v in (q if q[3] >= 0 else -q))


def resolved_urdf(path: Path) -> str:
    """The URDF at ``path`` with relative mesh paths made ``file://`` URIs.

    Models shipped in Python packages name their meshes relative to the URDF,
    which RViz's resource retriever cannot resolve (it takes package:// and
    file:// URIs); package:// and file:// names are left as they are."""
    def absolute(match: re.Match) -> str:
        name = match.group(2)
        if '://' in name:
            return match.group(0)
        return f'{match.group(1)}"{(path.parent / name).resolve().as_uri()}"'
    return re.sub(r'(filename\s*=\s*)"([^"]*)"', absolute, path.read_text())


def transform_msg(parent: str, child: str, matrix: np.ndarray, stamp: Time) -> TransformStamped:
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id, msg.child_frame_id = parent, child
    t = msg.transform.translation
    t.x, t.y, t.z = (float(v) for v in matrix[:3, 3])
    r = msg.transform.rotation
    r.x, r.y, r.z, r.w = quaternion(matrix[:3, :3])
    return msg


def _quaternion_product(a, b) -> tuple[float, float, float, float]:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz)


class _MovingJoint:
    """One moving joint's /tf transform, kept and updated in place: a revolute
    joint's translation never changes and its rotation is the origin's times one
    about the axis, so a publish costs a quaternion product, not matrices."""

    def __init__(self, joint, parent: str, child: str):
        self.name, self.kind = joint.name, joint.kind
        self.msg = transform_msg(parent, child, joint.origin, Time())
        self.origin_rotation = quaternion(joint.origin[:3, :3])
        self.origin = joint.origin
        self.axis = joint.axis

    def update(self, q: float, stamp: Time) -> TransformStamped:
        msg = self.msg
        msg.header.stamp = stamp
        if self.kind == 'prismatic':
            t = msg.transform.translation
            t.x, t.y, t.z = (float(v) for v in self.origin[:3, 3] + self.origin[:3, :3] @ (self.axis * q))
        else:
            s = math.sin(0.5 * q)
            x, y, z, w = _quaternion_product(
                self.origin_rotation, (self.axis[0] * s, self.axis[1] * s, self.axis[2] * s, math.cos(0.5 * q)))
            r = msg.transform.rotation
            r.x, r.y, r.z, r.w = (x, y, z, w) if w >= 0 else (-x, -y, -z, -w)     # one sign, as quaternion()
        return msg


class RobotStatePublisher:
    """robot_description, /tf_static and /tf of one backend (see the module docstring)."""

    def __init__(self, node: Node, robot: RobotDescription, frame_prefix: str = ''):
        self.kinematics = UrdfKinematics(robot)
        self._prefix = frame_prefix
        self._node = node
        self._description = node.create_publisher(String, 'robot_description', LATCHED_QOS)
        self._description.publish(String(data=resolved_urdf(robot.urdf_path)))
        self._static = node.create_publisher(TFMessage, '/tf_static', LATCHED_QOS)
        self._tf = node.create_publisher(TFMessage, '/tf', TF_QOS)
        self._static_frames = self._prefixed(self.kinematics.fixed_transforms)
        self._moving = [_MovingJoint(j, self.frame(j.parent), self.frame(j.child))
                        for j in self.kinematics.joints if j.name in self.kinematics.moving_joints]
        self.add_static_frames(())

    def _prefixed(self, frames: Iterable[Frame]) -> list[Frame]:
        return [(self.frame(p), self.frame(c), m) for p, c, m in frames]

    def frame(self, name: str) -> str:
        return self._prefix + name

    def add_static_frames(self, frames: Iterable[Frame]) -> None:
        """Add fixed frames and republish /tf_static whole (one latched message holds them all)."""
        self._static_frames.extend(frames)
        stamp = self._node.get_clock().now().to_msg()
        self._static.publish(TFMessage(transforms=[
            transform_msg(p, c, m, stamp) for p, c, m in self._static_frames]))

    def publish(self, stamp: Time, positions: Mapping[str, float], moving: Iterable[Frame] = ()) -> bool:
        """The moving joints at ``positions`` and the ``moving`` frames, stamped
        ``stamp``; False when nothing subscribes to /tf (nothing is sent)."""
        if self._tf.get_subscription_count() == 0:
            return False
        transforms = [joint.update(float(positions.get(joint.name, 0.0)), stamp) for joint in self._moving]
        transforms += [transform_msg(p, c, m, stamp) for p, c, m in moving]
        self._tf.publish(TFMessage(transforms=transforms))
        return True
