"""How every teleoperator hands its target to the follower (rclpy glue, one place).

``joint_trajectory``: one point, stamp 0 and time_from_start 0, the target from
now on, as LeRobot writes a leader's positions as goals (reads are close
together and the follower's velocity limit smooths them; interpolating over
one period instead made a follower whose loop ran slower than the stream
restart every plan from its last sample, creeping to the target).
``teleop/action``: the same target stamped with when it was made (the
trajectory's stamp is 0), which a recording exports as the action.
"""

from __future__ import annotations

from collections.abc import Sequence

from builtin_interfaces.msg import Time
import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robosandbox_control.clients import duration_msg


class TargetPublisher:

    def __init__(self, node: Node, joints: Sequence[str]):
        self.joints = list(joints)
        self.command_pub = node.create_publisher(JointTrajectory, 'joint_trajectory', 10)
        self.action_pub = node.create_publisher(JointState, 'teleop/action', 10)

    def publish(self, target: np.ndarray, stamp: Time) -> None:
        positions = [float(v) for v in target]
        self.command_pub.publish(JointTrajectory(joint_names=self.joints, points=[
            JointTrajectoryPoint(positions=positions, time_from_start=duration_msg(0.0))]))
        self.action_pub.publish(JointState(header=Header(stamp=stamp), name=self.joints, position=positions))
