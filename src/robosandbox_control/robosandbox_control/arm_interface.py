"""The ROS side of the arm contract, shared by the simulation and hardware nodes.

A backend node owns the control loop; this class gives it the command inputs
every robosandbox arm accepts:

* ``joint_trajectory`` (trajectory_msgs/JointTrajectory): streamed targets, a
  new message replaces the running trajectory;
* ``follow_joint_trajectory`` (robosandbox_msgs/action/FollowJointTrajectory):
  the same with feedback, cancel, goal tolerances and a result code;
* ``home`` (std_srvs/Trigger): move to the robot's home pose at a safe speed
  and answer when it is reached;

and :func:`joint_state_msg` for its ``joint_states`` output. Refused commands
are logged (topic) or returned in the action result, and the arm holds.
"""

from __future__ import annotations

from array import array
import threading
import time
from collections.abc import Callable

from builtin_interfaces.msg import Time
import numpy as np
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robosandbox_control.trajectory import (
    JointLimits, plan_trajectory, TrajectoryError, TrajectoryFollower, TrajectoryPlan,
    UnknownJointError)
from robosandbox_msgs.action import FollowJointTrajectory

FEEDBACK_PERIOD = 0.05  # s, wall time
MAX_START_DELAY = 60.0  # s: a trajectory may be stamped to start at most this far ahead


def to_seconds(t) -> float:
    """Seconds of a ``builtin_interfaces`` Time or Duration (or anything with sec, nanosec)."""
    return t.sec + t.nanosec * 1e-9


def split_seconds(t: float) -> tuple[int, int]:
    """Seconds and nanoseconds of ``t``, rounded to the nanosecond as one number.

    Rounding the fraction alone turns 2.9999999999 into 2 s + 1e9 ns, which
    wraps to 2.0: time would run backwards.
    """
    sec, nanosec = divmod(round(t * 1e9), 1_000_000_000)
    return int(sec), int(nanosec)


def time_msg(t: float) -> Time:
    """A ``builtin_interfaces`` Time of ``t`` seconds: the inverse of :func:`to_seconds`."""
    sec, nanosec = split_seconds(t)
    return Time(sec=sec, nanosec=nanosec)


def _doubles(values) -> array:
    # array('d') skips rclpy's per-element type checks: 4x cheaper at 100+ Hz.
    return array('d', np.asarray(values, dtype=np.float64).tobytes())


def joint_state_msg(names, stamp, position, velocity, effort=None) -> JointState:
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = _doubles(position)
    msg.velocity = _doubles(velocity)
    if effort is not None:
        msg.effort = _doubles(effort)
    return msg


def plan_from_msg(limits: JointLimits, traj: JointTrajectory) -> TrajectoryPlan:
    points = traj.points
    n = len(traj.joint_names)
    for i, p in enumerate(points):
        # As joint_trajectory_controller: velocities and accelerations are empty or one per joint.
        for what, values in (('velocities', p.velocities), ('accelerations', p.accelerations)):
            if len(values) not in (0, n):
                raise TrajectoryError(f'point {i} has {len(values)} {what} for {n} joints')
    have_vel = bool(points) and all(len(p.velocities) == n for p in points)
    return plan_trajectory(
        limits,
        list(traj.joint_names),
        [to_seconds(p.time_from_start) for p in points],
        [list(p.positions) for p in points],
        [list(p.velocities) for p in points] if have_vel else None,
    )


class ArmCommandInterface:
    """Trajectory topic and action server feeding a backend's TrajectoryFollower.

    ``lock`` guards ``follower`` (the backend samples it from its control loop);
    ``now`` returns the backend's clock in seconds (sim time for the sim);
    ``measured`` returns the measured joint positions in ``limits.names`` order;
    ``home`` is the home pose (``limits.names`` order) and ``home_velocity`` the
    fastest any joint moves getting there, rad/s; ``refusal`` (optional)
    returns why the backend takes no commands right now, or ''.
    """

    def __init__(
        self,
        node: Node,
        limits: JointLimits,
        follower: TrajectoryFollower,
        lock: threading.Lock,
        now: Callable[[], float],
        measured: Callable[[], np.ndarray],
        home: np.ndarray,
        home_velocity: float = 0.5,
        refusal: Callable[[], str] = lambda: '',
        default_goal_tolerance: float = 0.05,
        default_goal_time_tolerance: float = 1.0,
    ):
        self._node = node
        self._limits = limits
        self._follower = follower
        self._lock = lock
        self._now = now
        self._measured = measured
        self._home = np.asarray(home, dtype=float)
        self.home_velocity = home_velocity
        self._refusal = refusal
        self._goal_tolerance = default_goal_tolerance
        self._goal_time_tolerance = default_goal_time_tolerance
        self.refused = 0  # commands refused since start, for diagnostics
        # The plan started by the latest streamed message, and when (wall clock),
        # for a backend's watchdog: see stream_stalled.
        self._stream_plan_id = -1
        self._stream_wall = 0.0
        self._sub = node.create_subscription(
            JointTrajectory, 'joint_trajectory', self._on_trajectory, 10)
        self._server = ActionServer(
            node, FollowJointTrajectory, 'follow_joint_trajectory',
            execute_callback=self._execute,
            goal_callback=lambda _goal: GoalResponse.ACCEPT,
            cancel_callback=lambda _goal: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup())
        self._home_srv = node.create_service(Trigger, 'home', self._on_home,
                                             callback_group=ReentrantCallbackGroup())

    def destroy(self) -> None:
        self._server.destroy()
        self._node.destroy_subscription(self._sub)
        self._node.destroy_service(self._home_srv)

    def stream_stalled(self, timeout: float) -> bool:
        """True when the running plan came from the topic and no message followed
        it for ``timeout`` s (wall clock). Call with ``lock`` held."""
        return (self._follower.active and self._follower.plan_id == self._stream_plan_id
                and time.monotonic() - self._stream_wall > timeout)

    def _start_time(self, traj: JointTrajectory) -> float:
        """When a trajectory starts on this backend's clock: zero or past stamps start
        now, a stamp in the future delays the start. One more than MAX_START_DELAY
        ahead is refused: it is a client on another clock (wall time against sim
        time), and following it would leave the goal hanging for years."""
        now, stamp = self._now(), to_seconds(traj.header.stamp)
        if stamp - now > MAX_START_DELAY:
            raise TrajectoryError(
                f'header.stamp {stamp:.3f} s is {stamp - now:.0f} s ahead of this backend\'s clock '
                f'({now:.3f} s; more than {MAX_START_DELAY:g} s): a client on another clock? '
                f'(use_sim_time on the sim, or stamp 0 to start now)')
        return max(stamp, now)

    def _refuse(self, why: str) -> None:
        self.refused += 1
        self._node.get_logger().error(f'trajectory refused, holding: {why}')

    def _on_trajectory(self, traj: JointTrajectory) -> None:
        refusal = self._refusal()
        if refusal:
            self._refuse(refusal)
            return
        if not traj.points:
            # control_msgs convention: an empty trajectory stops and holds.
            with self._lock:
                self._follower.hold()
            return
        try:
            plan = plan_from_msg(self._limits, traj)
            start = self._start_time(traj)
        except TrajectoryError as e:
            self._refuse(str(e))
            return
        with self._lock:
            self._stream_plan_id = self._follower.start(plan, start)
            self._stream_wall = time.monotonic()

    def _on_home(self, _request, response: Trigger.Response) -> Trigger.Response:
        refusal = self._refusal()
        if refusal:
            self._refuse(refusal)
            response.success, response.message = False, refusal
            return response
        with self._lock:
            start = self._follower.target
            distance = float(np.max(np.abs(self._home - start)))
            duration = max(distance / self.home_velocity, 0.1)
            plan = plan_trajectory(self._limits, self._limits.names, [duration], [self._home])
            plan_id = self._follower.start(plan, self._now())
        deadline = time.monotonic() + 3.0 * duration + 5.0      # wall clock; sim time may lag
        while time.monotonic() < deadline:
            time.sleep(FEEDBACK_PERIOD)
            with self._lock:
                if self._follower.plan_id != plan_id:
                    response.success, response.message = False, 'preempted by a newer command'
                    return response
                running = self._follower.active
            error = np.abs(self._measured() - self._home)
            if not running and np.all(error <= self._goal_tolerance):
                response.success = True
                response.message = f'home reached in {duration:.1f} s of motion'
                return response
            refusal = self._refusal()
            if refusal:
                response.success, response.message = False, refusal
                return response
        worst = int(np.argmax(error))
        response.success = False
        response.message = (f'home not reached: {self._limits.names[worst]} is '
                            f'{error[worst]:.3f} rad away')
        return response

    def _execute(self, goal_handle):
        goal = goal_handle.request
        Result = FollowJointTrajectory.Result
        try:
            refusal = self._refusal()
            if refusal:
                raise TrajectoryError(refusal)
            plan = plan_from_msg(self._limits, goal.trajectory)
            tolerance = np.full(len(plan.joints), self._goal_tolerance)
            if len(goal.goal_tolerance):
                if len(goal.goal_tolerance) != len(plan.joints):
                    raise TrajectoryError('goal_tolerance must be empty or one per joint')
                tolerance = np.asarray(goal.goal_tolerance, dtype=float)
            start = self._start_time(goal.trajectory)
        except TrajectoryError as e:
            self._refuse(str(e))
            goal_handle.abort()
            code = (Result.INVALID_JOINTS if isinstance(e, UnknownJointError)
                    else Result.INVALID_GOAL)
            return Result(error_code=code, error_string=str(e))

        time_tolerance = to_seconds(goal.goal_time_tolerance) or self._goal_time_tolerance
        with self._lock:
            plan_id = self._follower.start(plan, start)
            end_time = self._follower.end_time()
        names = [self._limits.names[j] for j in plan.joints]
        feedback = FollowJointTrajectory.Feedback(joint_names=names)

        while True:
            time.sleep(FEEDBACK_PERIOD)
            with self._lock:
                superseded = self._follower.plan_id != plan_id
                running = self._follower.active and not superseded
                if goal_handle.is_cancel_requested and not superseded:
                    self._follower.hold()
                desired = self._follower.target[plan.joints]
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                return Result(error_code=Result.SUCCESSFUL,
                              error_string='canceled; holding the current target')
            if superseded:
                goal_handle.abort()
                return Result(error_code=Result.INVALID_GOAL,
                              error_string='preempted by a newer trajectory')
            actual = self._measured()[plan.joints]
            feedback.header.stamp = self._node.get_clock().now().to_msg()
            feedback.desired = JointTrajectoryPoint(positions=desired.tolist())
            feedback.actual = JointTrajectoryPoint(positions=actual.tolist())
            feedback.error = JointTrajectoryPoint(positions=(desired - actual).tolist())
            goal_handle.publish_feedback(feedback)
            if running:
                continue
            error = np.abs(plan.positions[-1] - actual)
            if np.all(error <= tolerance):
                goal_handle.succeed()
                return Result(error_code=Result.SUCCESSFUL)
            if self._now() > end_time + time_tolerance:
                worst = int(np.argmax(error - tolerance))
                goal_handle.abort()
                return Result(
                    error_code=Result.GOAL_TOLERANCE_VIOLATED,
                    error_string=(f'{names[worst]} is {error[worst]:.4f} rad from its goal '
                                  f'(tolerance {tolerance[worst]:.4f}) '
                                  f'{time_tolerance:.2f} s after the trajectory ended'))
