"""ROS 2 node that runs a policy: observations in, joint targets out.

Subscribes ``joint_states``, the camera topics the policy takes and
``task_status``; publishes ``joint_trajectory`` targets at the control rate
while a run is active. Runs are started with the ``~/run`` action
(robosandbox_msgs/action/RunPolicy); between runs nothing is published and the
arm holds its last target.

Control ticks are driven by the data: each new camera image (or joint state,
for policies without cameras) that falls on a new point of the tick grid (one
period apart from the run's first tick) triggers one tick, so a tick always
acts on a fresh observation pair and ticks follow sim time when the sim runs
slower or faster than real time.

In lockstep (the sim's mode of the same name) the node drives the sim: each
target goes out with a ``sim/step`` request that advances physics to the next
tick and publishes the observation there, and the next tick waits for that
observation; inference runs in line. No tick is missed and a run's result
does not depend on how fast the machine is. The target is still published on
``joint_trajectory``, so recordings and other listeners see the same topics in
both modes; the sim applies it as it applied the request's (physics advances
only in steps, each of which carries its own target).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import rclpy
from rclpy.task import Future
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.clock import Clock, ClockType
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robosandbox_control.arm_interface import time_msg, to_seconds
from robosandbox_control.environment_state import object_poses
from robosandbox_control.messages import diagnostic_array, diagnostic_status, image_array as pixels, OK
from robosandbox_control.parameters import declare, parameter, watch
from robosandbox_control.qos import IMAGE_QOS
from robosandbox_control.spinning import init, shutdown, spin_node
from robosandbox_description.robot import load_robot, RobotDescriptionError
from robosandbox_msgs.action import RunPolicy
from robosandbox_msgs.msg import TaskStatus
from robosandbox_msgs.srv import StepSim
from robosandbox_policy.checkpoint import CheckpointError
from robosandbox_policy.embodiment import EmbodimentError
from robosandbox_policy.factory import make_policy, PolicyOptions
from robosandbox_policy.observation import Observation
from robosandbox_policy.policy import control_rate, PolicyError
from robosandbox_policy.replay import TrajectoryFileError


@dataclass
class PolicyParameters:
    """Parameters of ``policy_node``. What shapes the loaded policy is fixed at start."""

    policy: str = parameter('expert', 'expert | hold | replay:<file.csv> | a LeRobot checkpoint '
                                      '(local directory or Hugging Face Hub repo id).', read_only=True)
    robot: str = parameter('so101', 'Robot description (packaged name or sidecar YAML): joint names, '
                                    'limits, gripper.', read_only=True)
    rate: float = parameter(0.0, "Control rate, Hz; 0 = the checkpoint's fps (30 when it records none). "
                                 'Fixed: action chunks are timed by it.', read_only=True, range=(0.0, 1000.0))
    task: str = parameter('', 'Default language instruction when a run goal gives none.')
    units: str = parameter('auto', 'Checkpoint joint units: ros (rad) | lerobot_so101 (deg, gripper 0-100) '
                                   '| auto (from the normalisation stats).', read_only=True)
    joint_names: list = parameter([], "Checkpoint state/action joint order; [] = the robot's joint order.",
                                  read_only=True, item_type=str)
    image_topics: list = parameter([], "'<image key>=<topic>' entries; keys not named read "
                                       'cameras/<key>/image_raw.', read_only=True, item_type=str)
    device: str = parameter('cpu', 'Torch device for checkpoints: cpu, cuda, cuda:N.', read_only=True)
    torch_threads: int = parameter(1, 'Torch CPU threads for inference (0 = torch default); keep it below '
                                      'the free cores so inference does not starve the sim.',
                                   read_only=True, range=(0, 256))
    inference_process: bool = parameter(
        True, "Run a checkpoint's inference in a process of its own: in the node's process it shares "
              "Python's GIL with every message callback (ACT inferred 1.3-1.5x slower there).",
        read_only=True)
    replay_lookahead: float = parameter(0.0, 'Replay: command each target this many s early.',
                                        read_only=True, range=(0.0, 10.0))
    action_tolerance: float = parameter(0.05, 'rad beyond a joint limit an action may go (then clipped); '
                                              'further out stops the run.', range=(0.0, 1.0))
    lockstep: bool = parameter(False, "Drive a sim in lockstep (its parameter of that name) through "
                                      'step_service: every tick waits for the policy, none is missed.',
                               read_only=True)
    step_service: str = parameter('sim/step', "The sim's step service, for lockstep.", read_only=True)
    lockstep_timeout: float = parameter(30.0, 'Lockstep: s (wall) to wait for a step and its observation '
                                              'before the run stops with an error.', read_only=True,
                                        range=(0.1, 3600.0))


@dataclass
class _Run:
    goal_handle: object
    task: str
    done: Future                     # set when the run ends
    first_stamp: float               # inputs stamped earlier are not this run's
    start: float | None = None       # stamp of the first tick, s
    index: int = 0                   # grid index of the last tick
    steps: int = 0
    missed: int = 0                  # ticks without a published target:
    late: int = 0                    #   of which inputs came too late (a tick was skipped)
    acted: bool = False
    end_reason: int = -1
    reason: str = ''
    success: bool = False
    success_known: bool = False
    success_since: float | None = None
    elapsed: float = 0.0
    awaiting: float | None = None    # lockstep: sim time of the observation the next tick waits for
    waiting_since: float = 0.0       # lockstep: time.monotonic() when the last step was requested


def image_array(msg: Image) -> np.ndarray:
    """HxWx3 uint8 RGB view of an rgb8/bgr8 image message."""
    if msg.encoding not in ('rgb8', 'bgr8'):
        raise PolicyError(f'camera images must be rgb8 or bgr8, got {msg.encoding!r}')
    return pixels(msg)


class PolicyNode(Node):

    def __init__(self, **kwargs):
        super().__init__('policy', **kwargs)
        # What destroy_node releases, set before anything can fail (a start cut short).
        self.policy = None
        self._server: ActionServer | None = None
        self.p = p = declare(self, PolicyParameters)
        watch(self, p)              # task and action_tolerance are read where used
        self.robot = load_robot(p.robot)
        self.policy = make_policy(p.policy, self.robot, PolicyOptions(
            units=p.units, image_topics=tuple(p.image_topics),
            joint_names=tuple(p.joint_names), device=p.device,
            torch_threads=p.torch_threads, rate=p.rate,
            replay_lookahead=p.replay_lookahead, lockstep=p.lockstep,
            inference_process=p.inference_process))
        for message in getattr(self.policy, 'warnings', []):
            self.get_logger().warning(message)
        self.rate = control_rate(p.rate, self.policy.fps)
        self.period = 1.0 / self.rate

        robot_joints = self.robot.joints
        unknown = [j for j in self.policy.joint_names if j not in robot_joints]
        if unknown:
            raise EmbodimentError(f'policy joints {unknown} are not joints of robot '
                                  f'{self.robot.name} ({list(robot_joints)})')
        index = [robot_joints.index(j) for j in self.policy.joint_names]
        self.lower = self.robot.lower[index]
        self.upper = self.robot.upper[index]

        self._run: _Run | None = None
        self._joint_state: JointState | None = None
        self._joint_index: list[int] | None = None
        self._joint_index_names: list[str] | None = None
        self._images: dict[str, Image] = {}
        self._status: TaskStatus | None = None
        self.overhead = deque(maxlen=2000)    # s, trigger arrival to publish, minus act()
        self.act_times = deque(maxlen=2000)   # s spent in policy.act()

        self.cmd_pub = self.create_publisher(JointTrajectory, 'joint_trajectory', 10)
        # Each target again, stamped with the observation it answers: what a recording
        # pairs with that observation (the command itself starts now, stamp 0).
        self.action_pub = self.create_publisher(JointState, '~/action', 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        topics = sorted(set(self.policy.image_topics.values()))
        self._trigger_topic = topics[0] if topics else None
        self.create_subscription(JointState, 'joint_states', self._on_joint_state, 10)
        self.create_subscription(TaskStatus, 'task_status', self._on_status, 10)
        for topic in topics:
            # Lockstep waits for each image, so it must not be dropped.
            self.create_subscription(
                Image, topic, lambda msg, t=topic: self._on_image(t, msg),
                IMAGE_QOS if p.lockstep else qos_profile_sensor_data)
        self._step_client = self.create_client(StepSim, p.step_service) if p.lockstep else None
        if p.lockstep:
            # Wall clock: sim time stands still while the sim waits on us.
            self.create_timer(1.0, self._watch_lockstep, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._server = ActionServer(
            self, RunPolicy, '~/run', execute_callback=self._execute,
            goal_callback=self._on_goal, cancel_callback=self._on_cancel)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f'policy {p.policy!r} at {self.rate:g} Hz; joints {list(self.policy.joint_names)}'
            + (f'; images {self.policy.image_topics}' if topics else '')
            + (f'; lockstep through {p.step_service}' if p.lockstep else '')
            + (f'; inference in process {pid}' if (pid := getattr(self.policy, 'inference_pid', None))
               else ''))

    # --- inputs -----------------------------------------------------------------

    def _on_joint_state(self, msg: JointState) -> None:
        arrived = time.perf_counter()
        if msg.name != self._joint_index_names:
            names = list(msg.name)
            missing = [j for j in self.policy.joint_names if j not in names]
            if missing:
                self.get_logger().error(f'joint_states lacks {missing}', throttle_duration_sec=5.0)
                return
            self._joint_index = [names.index(j) for j in self.policy.joint_names]
            self._joint_index_names = names
        self._joint_state = msg
        if self.p.lockstep:
            self._lockstep_input(arrived)
        elif self._trigger_topic is None:
            self._tick(to_seconds(msg.header.stamp), arrived)

    def _on_image(self, topic: str, msg: Image) -> None:
        arrived = time.perf_counter()
        self._images[topic] = msg
        if self.p.lockstep:
            self._lockstep_input(arrived)
        elif topic == self._trigger_topic:
            self._tick(to_seconds(msg.header.stamp), arrived)

    def _on_status(self, msg: TaskStatus) -> None:
        self._status = msg
        if self.p.lockstep:
            self._lockstep_input(time.perf_counter())

    # --- runs -------------------------------------------------------------------

    def _on_goal(self, goal) -> GoalResponse:
        if self._run is not None:
            self.get_logger().warning('a run is already active; goal rejected')
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_cancel(self, goal_handle) -> CancelResponse:
        run = self._run
        if run is not None and run.goal_handle is goal_handle:
            self._finish(run, RunPolicy.Result.CANCELED, 'canceled')
        return CancelResponse.ACCEPT

    async def _execute(self, goal_handle) -> RunPolicy.Result:
        goal = goal_handle.request
        # Inputs stamped before the goal belong to the previous run (or episode):
        # the sim's clock runs on across resets, so newer stamps mean newer state.
        latest = [to_seconds(m.header.stamp) for m in (self._joint_state, self._status) if m]
        first_stamp = max(latest) + 1e-9 if latest else 0.0
        run = _Run(goal_handle=goal_handle, task=goal.task or self.p.task,
                   done=Future(), first_stamp=first_stamp)
        self.policy.reset()
        self._run = run
        self.get_logger().info(f'run started: {run.task!r}')
        if self.p.lockstep:
            if not self._step_client.service_is_ready():
                self._finish(run, RunPolicy.Result.POLICY_ERROR,
                             f'lockstep: no {self._step_client.srv_name} service (is the sim in lockstep?)')
            else:
                self._step(run, JointTrajectory(), steps=1)   # one step: an observation newer than any
        await run.done
        result = RunPolicy.Result(
            end_reason=run.end_reason, reason=run.reason, success=run.success,
            success_known=run.success_known, steps=run.steps, missed_ticks=run.missed,
            elapsed=run.elapsed,
            time_to_success=(run.success_since - run.start
                             if run.end_reason == RunPolicy.Result.SUCCEEDED else -1.0))
        if run.end_reason == RunPolicy.Result.CANCELED:
            goal_handle.canceled()
        elif run.end_reason == RunPolicy.Result.POLICY_ERROR:
            goal_handle.abort()
        else:
            goal_handle.succeed()
        self.get_logger().info(
            f'run ended: {run.reason}; success={run.success if run.success_known else "unknown"}, '
            f'{run.steps} steps, {run.elapsed:.2f} s, {run.missed} missed ticks '
            f'({run.late} for late inputs, {run.missed - run.late} with no action ready)')
        return result

    def _finish(self, run: _Run, end_reason: int, reason: str) -> None:
        if self._run is run:
            self._run = None
            run.end_reason, run.reason = end_reason, reason
            run.done.set_result(True)

    # --- control ------------------------------------------------------------------

    def _observation(self, run: _Run, stamp: float) -> Observation | None:
        state = self._joint_state
        if state is None or to_seconds(state.header.stamp) < run.first_stamp:
            return None
        positions = np.array(state.position)[self._joint_index]
        images = {}
        for key, topic in self.policy.image_topics.items():
            msg = self._images.get(topic)
            if msg is None:
                return None
            images[key] = image_array(msg)
        poses = {}
        status = self._status
        if status is not None and to_seconds(status.header.stamp) >= run.first_stamp:
            poses = object_poses(status)
        elif self.policy.needs_object_poses:
            return None
        return Observation(time=stamp, joint_positions=positions, images=images, task=run.task,
                           object_poses=poses)

    def _tick(self, stamp: float, arrived: float) -> None:
        run = self._run
        if run is None or stamp < run.first_stamp:
            return
        index = 0
        if run.start is not None:
            # Ticks sit on a grid of periods from the first one and a trigger takes the
            # nearest grid point: inputs quantised by the sim's 2 ms step (a 30 Hz
            # camera at 34, 68, 100 ms...) then neither skip nor double a tick.
            index = round((stamp - run.start) / self.period)
            if index <= run.index:
                if self.p.lockstep:    # cannot happen with the sim's steps; never wait forever
                    self._step(run, JointTrajectory(), until=run.start + (run.index + 1) * self.period)
                return
            if run.acted and not self.policy.done:
                run.missed += index - run.index - 1
                run.late += index - run.index - 1
        action = None
        try:
            obs = self._observation(run, stamp)      # refuses images it cannot read
            if obs is None:
                if self.p.lockstep:
                    self._step(run, JointTrajectory(), steps=1)   # not all there yet: look again
                return
            if run.start is None:
                run.start = stamp
            run.index = index
            run.elapsed = stamp - run.start
            self._update_success(run, stamp)
            if not self.policy.done:     # a finished replay holds while its success is confirmed
                before = time.perf_counter()
                action = self.policy.act(obs)
                act_time = time.perf_counter() - before
                if action is None and run.acted:
                    run.missed += 1
        except PolicyError as e:
            self.get_logger().error(f'{e}; run stopped, the arm holds')
            self._finish(run, RunPolicy.Result.POLICY_ERROR, f'policy failed: {e}')
            return
        command = JointTrajectory()
        if action is not None:
            error = self._check(action)
            if error:
                self.get_logger().error(f'{error}; run stopped, the arm holds')
                self._finish(run, RunPolicy.Result.POLICY_ERROR, error)
                return
            command = self._command(np.clip(action, self.lower, self.upper), stamp)
            run.acted = True
            run.steps += 1
            self.act_times.append(act_time)
            self.overhead.append(time.perf_counter() - arrived - act_time)
            run.goal_handle.publish_feedback(RunPolicy.Feedback(
                step=run.steps, elapsed=run.elapsed, success=run.success))
        self._check_end(run)
        if self.p.lockstep and self._run is run:
            self._step(run, command, until=run.start + (run.index + 1) * self.period)

    def _check(self, action: np.ndarray) -> str:
        if action.shape != (len(self.policy.joint_names),):
            return f'policy returned {action.shape} values for {len(self.policy.joint_names)} joints'
        if not np.all(np.isfinite(action)):
            return f'policy produced a non-finite action {action.tolist()}'
        tolerance = self.p.action_tolerance
        over = (action < self.lower - tolerance) | (action > self.upper + tolerance)
        if np.any(over):
            bad = {self.policy.joint_names[i]: round(float(action[i]), 4) for i in np.flatnonzero(over)}
            return f'policy produced out-of-range targets {bad}'
        return ''

    def _command(self, action: np.ndarray, stamp: float) -> JointTrajectory:
        """The target as a one-point trajectory over one period (the backend
        interpolates between ticks), published (in lockstep it also goes with the
        step request); and again on ``~/action``, stamped with the observation it
        answers, for recordings."""
        msg = JointTrajectory()
        # Stamp 0: start on arrival, whatever the inference took (a stamp in the past
        # would make the backend skip, or refuse, what is already due).
        msg.joint_names = list(self.policy.joint_names)
        point = JointTrajectoryPoint()
        point.positions = action.tolist()
        point.time_from_start.nanosec = int(self.period * 1e9)
        msg.points = [point]
        self.cmd_pub.publish(msg)
        record = JointState(name=msg.joint_names, position=point.positions)
        record.header.stamp = Time(nanoseconds=round(stamp * 1e9)).to_msg()
        self.action_pub.publish(record)
        return msg

    def _update_success(self, run: _Run, stamp: float) -> None:
        status = self._status
        if status is None or to_seconds(status.header.stamp) < run.first_stamp:
            return
        run.success_known = True
        run.success = bool(status.success)
        if run.success and run.success_since is None:
            run.success_since = stamp
        elif not run.success:
            run.success_since = None

    def _check_end(self, run: _Run) -> None:
        goal, result = run.goal_handle.request, RunPolicy.Result
        confirming = goal.stop_on_success and run.success_since is not None
        if confirming and run.elapsed - (run.success_since - run.start) >= goal.success_hold:
            self._finish(run, result.SUCCEEDED, 'task succeeded')
        elif self.policy.done and not confirming:
            self._finish(run, result.POLICY_DONE, 'policy done')
        elif goal.max_steps and run.steps >= goal.max_steps:
            self._finish(run, result.MAX_STEPS, f'{goal.max_steps} steps')
        elif goal.max_duration > 0 and run.elapsed >= goal.max_duration:
            self._finish(run, result.MAX_DURATION, f'{goal.max_duration:g} s')

    # --- lockstep -------------------------------------------------------------------

    def _step(self, run: _Run, command: JointTrajectory, until: float = 0.0, steps: int = 0) -> None:
        """Ask the sim to apply ``command``, step to ``until`` and publish the observation there."""
        request = StepSim.Request(trajectory=command, steps=steps, observe=True)
        if until > 0.0:
            request.until = time_msg(until)
        run.awaiting, run.waiting_since = None, time.monotonic()
        self._step_client.call_async(request).add_done_callback(
            lambda future: self._on_stepped(run, future))

    def _on_stepped(self, run: _Run, future) -> None:
        if self._run is not run:
            return
        response = future.result()
        if response is None or not response.success:
            why = response.message if response is not None else 'no response'
            self.get_logger().error(f'lockstep: the sim did not step: {why}; run stopped')
            self._finish(run, RunPolicy.Result.POLICY_ERROR, f'sim step failed: {why}')
            return
        run.awaiting = to_seconds(response.sim_time)
        self._lockstep_input(time.perf_counter())    # the observation may have come first

    def _lockstep_input(self, arrived: float) -> None:
        """Tick once every input of the awaited observation has arrived."""
        run = self._run
        if run is None or run.awaiting is None:
            return
        t = run.awaiting - 1e-9
        inputs = [self._joint_state, self._status,
                  *(self._images.get(topic) for topic in self.policy.image_topics.values())]
        if all(m is not None and to_seconds(m.header.stamp) >= t for m in inputs):
            run.awaiting = None
            self._tick(to_seconds(self._joint_state.header.stamp), arrived)

    def _watch_lockstep(self) -> None:
        run = self._run
        if run is not None and time.monotonic() - run.waiting_since > self.p.lockstep_timeout:
            what = 'the observation' if run.awaiting is not None else self._step_client.srv_name
            self.get_logger().error(f'lockstep: no answer from {what} in {self.p.lockstep_timeout:g} s')
            self._finish(run, RunPolicy.Result.POLICY_ERROR,
                         f'lockstep: {what} did not come within {self.p.lockstep_timeout:g} s')

    # --- diagnostics ----------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        def ms(values, q):
            return f'{1e3 * float(np.percentile(values, q)):.3f}' if values else 'nan'
        overhead, act = list(self.overhead), list(self.act_times)
        runner = getattr(self.policy, 'runner', None)
        inference = list(runner.inference_times) if runner else []
        run = self._run
        status = diagnostic_status(f'{self.get_name()}: policy', OK, 'running' if run else 'idle', 'policy', (
            ('rate_hz', f'{self.rate:g}'),
            ('overhead_p50_ms', ms(overhead, 50)), ('overhead_p99_ms', ms(overhead, 99)),
            ('act_p50_ms', ms(act, 50)), ('act_p99_ms', ms(act, 99)),
            ('inference_p50_ms', ms(inference, 50)), ('inference_p99_ms', ms(inference, 99)),
            ('inferences', str(len(inference))),
            ('missed_ticks', str(run.missed if run else 0)),
        ))
        self.diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))

    def destroy_node(self) -> None:
        if self.policy is not None:
            self.policy.close()
        if self._server is not None:
            self._server.destroy()
        super().destroy_node()


CONFIG_ERRORS = (CheckpointError, EmbodimentError, RobotDescriptionError, TrajectoryFileError,
                 PolicyError, ValueError)


def main(args=None) -> int:
    init(args)
    try:
        node = PolicyNode()
    except CONFIG_ERRORS as e:
        rclpy.logging.get_logger('policy').fatal(f'cannot start: {e}')
        shutdown()
        return 1
    except KeyboardInterrupt:       # Ctrl-C while a checkpoint loads: a requested stop
        shutdown()
        return 0
    # One thread: callbacks are short (inference runs in the policy's own worker, and a
    # checkpoint's in a process of its own)
    # and rclpy's multi-threaded executor costs more CPU than it saves.
    return spin_node(node, SingleThreadedExecutor())


if __name__ == '__main__':
    raise SystemExit(main())
