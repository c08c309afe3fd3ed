"""The follower as every teleoperator sees it (rclpy glue, one place): where it is,
from ``joint_states`` in the teleoperator's joint order, and how a target is handed to it.

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


class Follower:

    def __init__(self, node: Node, joints: Sequence[str]):
        self.joints = list(joints)
        self.positions: np.ndarray | None = None      # rad, measured; None until joint_states names every joint
        self.command_pub = node.create_publisher(JointTrajectory, 'joint_trajectory', 10)
        self.action_pub = node.create_publisher(JointState, 'teleop/action', 10)
        node.create_subscription(JointState, 'joint_states', self._on_state, 10)

    def _on_state(self, msg: JointState) -> None:
        index = {name: i for i, name in enumerate(msg.name)}
        if all(j in index for j in self.joints):
            self.positions = np.array([msg.position[index[j]] for j in self.joints])

    def command(self, target: np.ndarray, stamp: Time) -> None:
        positions = [float(v) for v in target]
        self.command_pub.publish(JointTrajectory(joint_names=self.joints, points=[
            JointTrajectoryPoint(positions=positions, time_from_start=duration_msg(0.0))]))
        self.action_pub.publish(JointState(header=Header(stamp=stamp), name=self.joints, position=positions))
