"""The ROS side of the arm contract, shared by the simulation and hardware nodes.

A backend node owns the control loop; this class gives it the command inputs
every robosandbox arm accepts, as ros2_control's joint_trajectory_controller
offers them:

* ``joint_trajectory`` (trajectory_msgs/JointTrajectory): streamed targets, a
  new message replaces the running trajectory;
* ``follow_joint_trajectory`` (control_msgs/action/FollowJointTrajectory): the
  same with feedback, cancel (the arm holds), path and goal tolerances, goal
  time, partial-joint goals and a result code; a new goal or message preempts
  the running goal, which gets its result at once;
* ``home`` (std_srvs/Trigger): move to the robot's home pose at a safe speed
  and answer when it is reached;

and :func:`joint_state_msg` for its ``joint_states`` output. Refused commands
are logged (topic) or returned in the action result with the reason, and the
arm holds. Where we differ from joint_trajectory_controller, on purpose: an
invalid goal is accepted and then aborted with its error code and reason (the
controller rejects it, and a rejected goal carries no reason to the client);
a trajectory stamped in the past starts now rather than skipping its elapsed
part (no jump), unless all of it is past (OLD_HEADER_TIMESTAMP).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
import math
import threading
import time
from collections.abc import Callable

from builtin_interfaces.msg import Time
from control_msgs.action import FollowJointTrajectory
import numpy as np
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.action.server import GoalEvent
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robosandbox_control.parameters import parameter
from robosandbox_control.trajectory import (
    JointLimits, plan_trajectory, TrajectoryError, TrajectoryFollower, TrajectoryPlan,
    UnknownJointError)

FEEDBACK_PERIOD = 0.05  # s, wall time
MAX_START_DELAY = 60.0  # s: a trajectory may be stamped to start at most this far ahead
Result = FollowJointTrajectory.Result
# control_msgs 6.3+ (Kilted) reports the point being executed; 5.x (Jazzy) has no such field.
_FEEDBACK_HAS_INDEX = 'index' in FollowJointTrajectory.Feedback.get_fields_and_field_types()


@dataclass
class ArmParameters:
    """Parameters every backend shares: its command interface and its robot's frames.

    The tolerances are joint_trajectory_controller's ``constraints``: a goal's own
    tolerances override them joint by joint."""

    goal_tolerance: float = parameter(
        0.05, 'Default goal tolerance of every joint, rad: the action succeeds once each joint is '
              'this close to its last point.', range=(0.0, 3.2))
    path_tolerance: float = parameter(
        0.0, 'Default path tolerance of every joint, rad: farther than this from the moving setpoint '
             'aborts the goal and holds (0 = not checked).', range=(0.0, 3.2))
    goal_time: float = parameter(
        1.0, 'Default goal_time_tolerance, s: how long after the last point\'s time the joints may '
             'take to settle within the goal tolerance.', range=(0.0, 60.0))
    home_velocity: float = parameter(0.5, 'Fastest joint speed on the way to the home pose (~/home), rad/s.',
                                     range=(0.01, 10.0))
    frame_prefix: str = parameter('', 'Prefix of the robot\'s TF frames (links, cameras), as '
                                      'robot_state_publisher\'s frame_prefix: "arm1/" for a second arm.',
                                  read_only=True)


class GoalError(TrajectoryError):
    """A goal was refused; ``code`` is its control_msgs error code."""

    def __init__(self, message: str, code: int = Result.INVALID_GOAL):
        super().__init__(message)
        self.code = code


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



def tolerances(names: list[str], given, default: float, what: str) -> np.ndarray:
    """Per-joint position tolerances (rad, ``inf`` = unchecked) for ``names`` from a goal's
    ``JointTolerance[]``, by joint_trajectory_controller's rules: a joint not listed,
    or listed with 0, gets ``default`` (0 as a default means unchecked); -1 erases the
    tolerance. A tolerance we cannot check (velocity, acceleration) is refused, not
    silently ignored."""
    result = np.full(len(names), default if default > 0 else math.inf)
    for tol in given:
        if tol.name not in names:
            raise GoalError(f'{what} names joint {tol.name!r}, which is not in the trajectory '
                            f'{names}')
        if tol.velocity > 0 or tol.acceleration > 0:
            raise GoalError(f'{what} for {tol.name}: only position tolerances are supported '
                            f'(velocity {tol.velocity:g}, acceleration {tol.acceleration:g})')
        if not math.isfinite(tol.position) or (tol.position < 0 and tol.position != -1):
            raise GoalError(f'{what} for {tol.name}: position {tol.position!r} is not a tolerance '
                            f'(> 0, 0 = default, -1 = none)')
        if tol.position == -1:
            result[names.index(tol.name)] = math.inf
        elif tol.position > 0:
            result[names.index(tol.name)] = tol.position
    return result


@dataclass
class _Goal:
    """An accepted FollowJointTrajectory goal while it runs."""

    handle: object
    plan: TrajectoryPlan
    plan_id: int
    names: list[str]
    start: float                 # backend clock, s
    end: float                   # backend clock, s: start + plan duration
    goal_tolerance: np.ndarray
    path_tolerance: np.ndarray
    goal_time: float
    done: Future
    finished: bool = False


class ArmCommandInterface:
    """Trajectory topic and action server feeding a backend's TrajectoryFollower.

    ``lock`` guards ``follower`` (the backend samples it from its control loop);
    ``now`` returns the backend's clock in seconds (sim time for the sim);
    ``measured`` returns the measured joint positions in ``limits.names`` order;
    ``home`` is the home pose (``limits.names`` order); ``parameters`` holds the
    live :class:`ArmParameters`; ``refusal`` (optional) returns why the backend
    takes no commands right now, or ''.
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
        parameters: ArmParameters,
        refusal: Callable[[], str] = lambda: '',
        on_command: Callable[[], None] = lambda: None,
    ):
        self._node = node
        self._limits = limits
        self._follower = follower
        self._lock = lock
        self._now = now
        self._measured = measured
        self._home = np.asarray(home, dtype=float)
        self.p = parameters
        self._refusal = refusal
        self._on_command = on_command          # a streamed target started (the hardware writes it at once)
        self.refused = 0  # commands refused since start, for diagnostics
        # The plan started by the latest streamed message and when it ends (backend
        # clock), for a backend's watchdog: see stream_stalled.
        self._stream_plan_id = -1
        self._stream_end = 0.0
        self._goal: _Goal | None = None        # the running action goal
        self._ticks: list[Future] = []         # awaited by home calls: done at the next watch
        self._goal_lock = threading.Lock()
        self._sub = node.create_subscription(
            JointTrajectory, 'joint_trajectory', self.command, 10)
        self._server = ActionServer(
            node, FollowJointTrajectory, 'follow_joint_trajectory',
            execute_callback=self._execute,
            goal_callback=lambda _goal: GoalResponse.ACCEPT,
            cancel_callback=lambda _goal: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup())
        # Goals and home calls are watched by one wall-clock timer, not one blocked
        # thread each: a storm of goals costs nothing, no callback ever blocks the
        # executor (a single thread serves all), and sim time that stands still
        # (paused) does not stop feedback. It runs only while something waits.
        self._monitor = node.create_timer(
            FEEDBACK_PERIOD, self._watch_goal, MutuallyExclusiveCallbackGroup(),
            clock=Clock(clock_type=ClockType.STEADY_TIME), autostart=False)
        self._home_srv = node.create_service(Trigger, 'home', self._on_home,
                                             callback_group=ReentrantCallbackGroup())

    def destroy(self) -> None:
        self._node.destroy_timer(self._monitor)
        self._server.destroy()
        self._node.destroy_subscription(self._sub)
        self._node.destroy_service(self._home_srv)

    def stream_stalled(self, timeout: float) -> bool:
        """True when the latest command came from the topic and ``timeout`` s have
        passed since its last point's time (joint_trajectory_controller's
        cmd_timeout): a streaming client has gone quiet. Call with ``lock`` held."""
        return (self._follower.plan_id == self._stream_plan_id
                and self._now() > self._stream_end + timeout)

    def _start_time(self, traj: JointTrajectory, duration: float) -> float:
        """When a trajectory starts on this backend's clock. Zero stamps start now;
        a stamp in the future delays the start, one more than MAX_START_DELAY ahead
        is refused (a client on another clock: wall time against sim time would
        leave the goal hanging for years); a stamp in the past starts now, unless
        the whole trajectory ended before now (OLD_HEADER_TIMESTAMP)."""
        now, stamp = self._now(), to_seconds(traj.header.stamp)
        if stamp == 0.0:
            return now
        if stamp - now > MAX_START_DELAY:
            raise GoalError(
                f'header.stamp {stamp:.3f} s is {stamp - now:.0f} s ahead of this backend\'s clock '
                f'({now:.3f} s; more than {MAX_START_DELAY:g} s): a client on another clock? '
                f'(use_sim_time on the sim, or stamp 0 to start now)')
        if stamp + duration < now:
            raise GoalError(
                f'the trajectory ended {now - stamp - duration:.3f} s ago (header.stamp {stamp:.3f} s '
                f'+ {duration:.3f} s, this backend\'s clock {now:.3f} s): a client on another clock? '
                f'(use_sim_time on the sim, or stamp 0 to start now)', Result.OLD_HEADER_TIMESTAMP)
        return max(stamp, now)

    def _refuse(self, why: str) -> None:
        self.refused += 1
        self._node.get_logger().error(f'trajectory refused, holding: {why}')

    def command(self, traj: JointTrajectory) -> str:
        """Start ``traj`` as a streamed command, as received on ``joint_trajectory``
        (the sim's lockstep step request brings one too); why it was refused (counted
        and logged), or ''."""
        refusal = self._refusal()
        if refusal:
            self._refuse(refusal)
            return refusal
        if not traj.points:
            # control_msgs convention: an empty trajectory stops and holds.
            with self._lock:
                self._follower.hold()
            return ''
        try:
            plan = plan_from_msg(self._limits, traj)
            start = self._start_time(traj, plan.duration)
        except TrajectoryError as e:
            self._refuse(str(e))
            return str(e)
        with self._lock:
            self._stream_plan_id = self._follower.start(plan, start)
            self._stream_end = start + plan.duration
        self._on_command()
        return ''

    def _next_tick(self) -> Future:
        """A future done at the monitor's next run (FEEDBACK_PERIOD): a coroutine's sleep."""
        tick = Future(executor=self._node.executor)
        tick.add_done_callback(lambda _future: None)     # wakes the executor when done
        with self._goal_lock:
            self._ticks.append(tick)
            self._monitor.reset()
        return tick

    async def _on_home(self, _request, response: Trigger.Response) -> Trigger.Response:
        refusal = self._refusal()
        if refusal:
            self._refuse(refusal)
            response.success, response.message = False, refusal
            return response
        with self._lock:
            start = self._follower.target
            distance = float(np.max(np.abs(self._home - start)))
            duration = max(distance / self.p.home_velocity, 0.1)
            plan = plan_trajectory(self._limits, self._limits.names, [duration], [self._home])
            plan_id = self._follower.start(plan, self._now())
        deadline = time.monotonic() + 3.0 * duration + 5.0      # wall clock; sim time may lag
        while time.monotonic() < deadline:
            await self._next_tick()
            with self._lock:
                if self._follower.plan_id != plan_id:
                    response.success, response.message = False, 'preempted by a newer command'
                    return response
                running = self._follower.active
            error = np.abs(self._measured() - self._home)
            if not running and np.all(error <= self.p.goal_tolerance):
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

    # --- the action ----------------------------------------------------------------

    def _check_goal(self, request) -> tuple[TrajectoryPlan, float, np.ndarray, np.ndarray, float]:
        refusal = self._refusal()
        if refusal:
            raise GoalError(refusal)
        if request.multi_dof_trajectory.joint_names or request.multi_dof_trajectory.points:
            raise GoalError('multi_dof_trajectory is not supported: this arm has only single-DOF joints',
                            Result.INVALID_JOINTS)
        try:
            plan = plan_from_msg(self._limits, request.trajectory)
        except UnknownJointError as e:
            raise GoalError(str(e), Result.INVALID_JOINTS) from None
        except TrajectoryError as e:
            raise GoalError(str(e)) from None
        names = list(request.trajectory.joint_names)
        goal_tol = tolerances(names, request.goal_tolerance, self.p.goal_tolerance, 'goal_tolerance')
        path_tol = tolerances(names, request.path_tolerance, self.p.path_tolerance, 'path_tolerance')
        goal_time = to_seconds(request.goal_time_tolerance)
        if goal_time < 0:
            raise GoalError(f'goal_time_tolerance {goal_time:g} s is negative')
        start = self._start_time(request.trajectory, plan.duration)
        return plan, start, goal_tol, path_tol, goal_time or self.p.goal_time

    async def _execute(self, goal_handle):
        try:
            plan, start, goal_tol, path_tol, goal_time = self._check_goal(goal_handle.request)
        except GoalError as e:
            self._refuse(str(e))
            goal_handle.abort()
            return Result(error_code=e.code, error_string=str(e))
        # Bound to the executor with a done callback, so finishing the goal from
        # another thread wakes the executor to resume this coroutine at once.
        done = Future(executor=self._node.executor)
        done.add_done_callback(lambda _future: None)
        with self._goal_lock:
            with self._lock:
                plan_id = self._follower.start(plan, start)
            goal = _Goal(goal_handle, plan, plan_id, list(goal_handle.request.trajectory.joint_names),
                         start, start + plan.duration, goal_tol, path_tol, goal_time, done)
            previous, self._goal = self._goal, goal
            self._monitor.reset()
        if previous is not None:
            self._finish(previous, 'preempted', Result.INVALID_GOAL,
                         'preempted by a newer goal (as joint_trajectory_controller does)')
        status, code, why = await goal.done
        if status == 'succeeded':
            goal_handle.succeed()
        elif status == 'canceled':
            goal_handle.canceled()
        elif status == 'preempted':
            # Like joint_trajectory_controller: a preempted goal ends CANCELED.
            if not goal_handle.is_cancel_requested:
                goal_handle._update_state(GoalEvent.CANCEL_GOAL)  # rclpy has no public preempt
            goal_handle.canceled()
        else:
            goal_handle.abort()
        return Result(error_code=code, error_string=why)

    def _finish(self, goal: _Goal, status: str, code: int, why: str) -> None:
        with self._goal_lock:
            if goal.finished:
                return
            goal.finished = True
            if self._goal is goal:
                self._goal = None
        goal.done.set_result((status, code, why))

    def _watch_goal(self) -> None:
        """Every FEEDBACK_PERIOD: home calls resumed; the running goal's feedback,
        tolerances and end."""
        with self._goal_lock:
            ticks, self._ticks = self._ticks, []
        for tick in ticks:
            tick.set_result(None)
        goal = self._goal
        if goal is None or goal.finished:
            with self._goal_lock:
                if self._goal is None and not self._ticks:
                    self._monitor.cancel()
            return
        handle = goal.handle
        with self._lock:
            superseded = self._follower.plan_id != goal.plan_id
            running = self._follower.active and not superseded
            if handle.is_cancel_requested and not superseded:
                self._follower.hold()
            desired = self._follower.target[goal.plan.joints]
        if handle.is_cancel_requested:
            self._finish(goal, 'canceled', Result.SUCCESSFUL, 'canceled; holding the current target')
            return
        if superseded:
            if self._goal is goal:        # else a newer goal is finishing this one
                self._finish(goal, 'preempted', Result.INVALID_GOAL,
                             'preempted by a newer command (joint_trajectory topic or home)')
            return
        refusal = self._refusal()
        if refusal:
            self._finish(goal, 'aborted', Result.INVALID_GOAL, refusal)
            return
        actual = self._measured()[goal.plan.joints]
        now = self._now()
        self._publish_feedback(goal, desired, actual, now)
        if running:
            deviation = np.abs(desired - actual)
            if np.any(deviation > goal.path_tolerance):
                worst = int(np.argmax(deviation - goal.path_tolerance))
                with self._lock:
                    if self._follower.plan_id == goal.plan_id:
                        self._follower.hold(self._with(actual, goal))
                self._finish(goal, 'aborted', Result.PATH_TOLERANCE_VIOLATED,
                             f'{goal.names[worst]} is {deviation[worst]:.4f} rad from its setpoint '
                             f'(path tolerance {goal.path_tolerance[worst]:.4f}); holding')
            return
        error = np.abs(goal.plan.positions[-1] - actual)
        if np.all(error <= goal.goal_tolerance):
            self._finish(goal, 'succeeded', Result.SUCCESSFUL, '')
        elif now > goal.end + goal.goal_time:
            worst = int(np.argmax(error - goal.goal_tolerance))
            self._finish(goal, 'aborted', Result.GOAL_TOLERANCE_VIOLATED,
                         f'{goal.names[worst]} is {error[worst]:.4f} rad from its goal '
                         f'(tolerance {goal.goal_tolerance[worst]:.4f}) '
                         f'{goal.goal_time:.2f} s after the trajectory ended')

    def _with(self, actual: np.ndarray, goal: _Goal) -> np.ndarray:
        """The follower's full target with ``goal``'s joints set to ``actual``."""
        target = self._follower.target
        target[goal.plan.joints] = actual
        return target

    def _publish_feedback(self, goal: _Goal, desired, actual, now: float) -> None:
        feedback = FollowJointTrajectory.Feedback(joint_names=goal.names)
        feedback.header.stamp = time_msg(now)        # the backend's one clock
        feedback.desired = JointTrajectoryPoint(positions=desired.tolist())
        feedback.actual = JointTrajectoryPoint(positions=actual.tolist())
        feedback.error = JointTrajectoryPoint(positions=(desired - actual).tolist())
        if _FEEDBACK_HAS_INDEX:
            # The point being approached: the first whose time has not come.
            k = int(np.searchsorted(goal.plan.times, now - goal.start, side='right'))
            feedback.index = min(k, len(goal.plan.times) - 1)
        goal.handle.publish_feedback(feedback)
