"""The client side of the arm contract, as any ROS program would use it.

One way to send a trajectory and one way to run an action goal to its end,
for our own clients (the demo, the episode runner, benchmarks and tests) and
as an example for users' code. Everything here spins the given node itself:
call it from a plain script, not from inside a callback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from builtin_interfaces.msg import Duration
from control_msgs.action import FollowJointTrajectory
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import rclpy
from rclpy.action import ActionClient
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robosandbox_control.arm_interface import split_seconds
from robosandbox_control.spinning import spin_until, wait_future


class ActionRefused(RuntimeError):
    """The action server is not there, or it rejected the goal."""


def duration_msg(seconds: float) -> Duration:
    sec, nanosec = split_seconds(seconds)
    return Duration(sec=sec, nanosec=nanosec)


def trajectory_msg(names: Sequence[str], points: Iterable[tuple[float, Sequence[float]]]) -> JointTrajectory:
    """A JointTrajectory from ``(time_from_start s, positions)`` pairs."""
    return JointTrajectory(joint_names=list(names), points=[
        JointTrajectoryPoint(positions=[float(v) for v in positions], time_from_start=duration_msg(t))
        for t, positions in points])


def _name(client: ActionClient) -> str:
    return getattr(client, '_action_name', 'the')    # rclpy keeps the name it was given here


def send_goal(node: Node, client: ActionClient, goal, *, server_timeout: float = 20.0,
              accept_timeout: float = 20.0, feedback_callback=None):
    """Send ``goal`` and wait until it is accepted; its goal handle.

    Raises :class:`ActionRefused` when no server answers within
    ``server_timeout`` s or the server rejects the goal.
    """
    if not client.wait_for_server(timeout_sec=server_timeout):
        raise ActionRefused(f'no {_name(client)} action server after {server_timeout:g} s')
    handle = wait_future(node, client.send_goal_async(goal, feedback_callback=feedback_callback),
                         accept_timeout)
    if not handle.accepted:
        raise ActionRefused(f'{_name(client)} rejected the goal')
    return handle


def run_goal(node: Node, client: ActionClient, goal, timeout: float, **send_options):
    """Send ``goal`` and wait for its result message (``timeout`` s once accepted)."""
    handle = send_goal(node, client, goal, **send_options)
    return wait_future(node, handle.get_result_async(), timeout).result


class ArmClient:
    """What a user's program sees of an arm backend, sim or hardware: ``joint_states``,
    ``/diagnostics``, the ``joint_trajectory`` topic, the ``follow_joint_trajectory``
    action and Trigger services (``home``, a backend's own)."""

    def __init__(self, node_name: str = 'arm_client', joints: Sequence[str] = ()):
        self.node = rclpy.create_node(node_name)
        self.joints = tuple(joints)
        self.states: list = []
        self.diagnostics: list = []
        self.node.create_subscription(JointState, 'joint_states', self.states.append, 100)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, 10)
        self.trajectories = self.node.create_publisher(JointTrajectory, 'joint_trajectory', 10)
        self.action = ActionClient(self.node, FollowJointTrajectory, 'follow_joint_trajectory')
        self._services: dict = {}

    def close(self) -> None:
        self.node.destroy_node()

    def spin(self, seconds: float) -> None:
        spin_until(self.node, lambda: False, seconds)

    def wait(self, condition, timeout: float, what='') -> bool:
        """Spin until ``condition()``; else raise TimeoutError with ``what`` (a callable is read then)."""
        if not spin_until(self.node, condition, timeout):
            raise TimeoutError(what() if callable(what) else (what or f'not within {timeout:g} s'))
        return True

    def position(self) -> np.ndarray:
        if not self.states:
            raise RuntimeError('no joint_states received yet')
        return np.array(self.states[-1].position)

    def call(self, service: str, timeout: float = 60.0):
        """Call the std_srvs/Trigger service ``service``; its response."""
        client = self._services.get(service) or self._services.setdefault(
            service, self.node.create_client(Trigger, service))
        if not client.wait_for_service(timeout_sec=20.0):
            raise TimeoutError(f'no {service} service')
        return wait_future(self.node, client.call_async(Trigger.Request()), timeout)

    def stream(self, positions, seconds: float, names: Sequence[str] = ()) -> None:
        """Publish a one-point trajectory on the topic (the streaming interface)."""
        self.trajectories.publish(trajectory_msg(names or self.joints, [(seconds, positions)]))

    def follow(self, positions, seconds: float, names: Sequence[str] = (), time_tolerance: float = 10.0):
        """Run a one-point trajectory through the action; its result message."""
        goal = FollowJointTrajectory.Goal(
            trajectory=trajectory_msg(names or self.joints, [(seconds, positions)]),
            goal_time_tolerance=duration_msg(time_tolerance))
        return run_goal(self.node, self.action, goal, seconds + time_tolerance + 30.0)

    def status(self, name: str):
        """The latest diagnostics status called ``name``, or None."""
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name == name:
                    return status
        return None
