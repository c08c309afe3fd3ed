"""ROS 2 node around the simulation core.

Physics runs in its own thread, paced to ``real_time_factor``; it publishes
``/clock``, ``joint_states`` (with ``/tf``), camera_info and the images that
have subscribers and ``task_status`` at their rates (Hz of sim time), and
``/diagnostics`` once a second, all stamped with sim time. The executor thread
only receives commands and service calls; requests that touch the simulation
(reset, step) are handed to the physics thread, which owns the MuJoCo data and
the render contexts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import math
import queue
import threading
import time

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Pose
import numpy as np
from rclpy.node import Node

from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import SetBool
from visualization_msgs.msg import Marker, MarkerArray

from robosandbox_control.arm_interface import (
    ArmCommandInterface, ArmParameters, joint_state_msg, time_msg, to_seconds)
from robosandbox_control.messages import camera_info, diagnostic_array, diagnostic_status, OK, WARN
from robosandbox_control.parameters import declare, parameter, watch
from robosandbox_control.qos import CAMERA_INFO_QOS, IMAGE_QOS, LATCHED_QOS
from robosandbox_control.robot_state import OPTICAL_FROM_GL, RobotStatePublisher
from robosandbox_control.spinning import run_node
from robosandbox_control.trajectory import JointLimits, TrajectoryFollower
from robosandbox_msgs.msg import TaskStatus
from robosandbox_msgs.srv import ResetSim, StepSim
from robosandbox_description.robot import load_robot, RobotDescriptionError
from robosandbox_sim.simulation import Simulation
from robosandbox_sim.task import TaskError

@dataclass
class SimParameters(ArmParameters):
    """Parameters of ``sim``. What builds the scene is fixed at start; rates and pacing are live."""

    robot: str = parameter('so101', 'Packaged robot name (so101, so_arm100) or path to a robot sidecar YAML.',
                           read_only=True)
    robot_model: str = parameter('', 'MJCF/URDF file overriding the model named by the robot sidecar.',
                                 read_only=True)
    task: str = parameter('pick_cube', 'Task loaded at start: a packaged task name or a task YAML path '
                                       '(~/reset loads others).', read_only=True)
    seed: int = parameter(0, 'Seed of the initial task randomisation.', read_only=True, range=(0, 2**31 - 1))
    real_time_factor: float = parameter(1.0, 'Sim seconds per wall second; 0 runs as fast as possible.',
                                        range=(0.0, 1000.0))
    joint_state_rate: float = parameter(100.0, 'joint_states publish rate, Hz of sim time.',
                                        range=(0.1, 1000.0))
    clock_rate: float = parameter(100.0, '/clock publish rate, Hz of sim time (500 = every physics step). '
                                         'Every use_sim_time node receives each one: Python nodes afford '
                                         '100 Hz, not 500.', range=(1.0, 1000.0))
    task_status_rate: float = parameter(10.0, 'task_status publish rate, Hz of sim time.', range=(0.1, 1000.0))
    cameras: list = parameter(['all'], "Cameras to publish, or ['all']; each only while it has subscribers.",
                              read_only=True)
    camera_width: int = parameter(320, 'Camera image width, pixels.', read_only=True, range=(1, 4096))
    camera_height: int = parameter(240, 'Camera image height, pixels.', read_only=True, range=(1, 4096))
    camera_rate: float = parameter(30.0, 'Camera publish rate, Hz of sim time.', range=(0.1, 1000.0))
    tf_rate: float = parameter(100.0, '/tf goes out with joint_states, at most this often per wall-clock '
                                      'second (Hz): free-running, a viewer needs no more and the sim '
                                      'keeps its speed.', range=(1.0, 1000.0))
    visual_detail: float = parameter(0.003, 'Visual mesh simplification cell size, m; 0 keeps the full '
                                            'meshes.', read_only=True, range=(0.0, 0.1))
    start_paused: bool = parameter(False, 'Start with physics paused (use ~/pause and ~/step).', read_only=True)
    lockstep: bool = parameter(False, 'Advance only through ~/step, one control tick per request (the policy '
                                      "node's lockstep): results then do not depend on the machine's speed.",
                               read_only=True)


LISTENERS_PERIOD = 0.1    # s (wall) between looks at who reads each publication (see _listeners)


@dataclass
class _Request:
    kind: str               # 'reset' or 'step'
    args: tuple
    done: threading.Event
    error: str = ''


class SimNode(Node):

    def __init__(self, **kwargs):
        super().__init__('sim', **kwargs)
        # What destroy_node releases, set before anything can fail: rclpy destroys a
        # node whose start was cut short (Ctrl-C while the model loads), as so101's.
        self._thread: threading.Thread | None = None
        self.commands: ArmCommandInterface | None = None
        self.p = p = declare(self, SimParameters)

        robot = load_robot(p.robot, p.robot_model or None)
        self.sim = Simulation(robot, p.task, p.seed, p.visual_detail)
        self.rtf = p.real_time_factor
        self._paused = p.start_paused or p.lockstep

        names = self.sim.joint_names
        lo, hi = self.sim.joint_limits()
        self.limits = JointLimits(names, lo, hi)
        self.lock = threading.Lock()
        self.follower = TrajectoryFollower(self.sim.targets())
        self.commands = ArmCommandInterface(
            self, self.limits, self.follower, self.lock,
            now=lambda: self.sim.time, measured=self._measured_positions,
            home=[robot.home[j] for j in names], parameters=p)

        # Reliable at 500 Hz: a depth of 10 would give a subscriber (the recorder)
        # only 20 ms of slack before samples are overwritten unacknowledged.
        self.clock_pub = self.create_publisher(Clock, '/clock', 100)
        self._clock_msg = Clock()
        # 1 s of history: a reliable reader (the recorder) that falls behind
        # for a moment gets the samples resent instead of losing them.
        self.joint_pub = self.create_publisher(JointState, 'joint_states', 100)
        self.status_pub = self.create_publisher(TaskStatus, 'task_status', 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        cameras = self.sim.camera_names if 'all' in p.cameras else p.cameras
        unknown = set(cameras) - set(self.sim.camera_names)
        if unknown:
            raise ValueError(f'unknown camera(s) {sorted(unknown)}; '
                             f'this robot and task have {list(self.sim.camera_names)}')
        self.cam_size = (p.camera_width, p.camera_height)
        self.marker_pub = self.create_publisher(MarkerArray, 'scene_markers', LATCHED_QOS)
        self.robot_state = self._robot_state(robot)
        frame = self.robot_state.frame if self.robot_state else str
        # camera_info never changes (fixed size, fixed fovy): built once, restamped per frame.
        self.cameras = {
            name: (self.create_publisher(Image, f'cameras/{name}/image_raw', IMAGE_QOS),
                   self.create_publisher(CameraInfo, f'cameras/{name}/camera_info', CAMERA_INFO_QOS),
                   camera_info(self.sim.intrinsics(name, *self.cam_size), frame(f'{name}_optical_frame')))
            for name in cameras}
        if self.robot_state:
            self.robot_state.add_static_frames(self._camera_frames(cameras))

        self.create_service(ResetSim, '~/reset', self._on_reset)
        self.create_service(StepSim, '~/step', self._on_step)
        self.create_service(SetBool, '~/pause', self._on_pause)

        self._periods = self._periods_from(p)
        self._requests: queue.Queue[_Request] = queue.Queue()
        self._running = True
        self.failed = False
        self._measured_rtf = 0.0
        self._publish_latency: deque[float] = deque(maxlen=1000)  # s, step -> joint_states out
        self._tf_cost: deque[float] = deque(maxlen=1000)          # s per /tf message built and sent
        self._tf_wall = 0.0                                       # perf_counter of the last /tf
        self._listeners_checked = -math.inf
        self._published: dict[str, float] = {}    # sim time each scheduled publication last went out
        self._frames = dict.fromkeys(self.cameras, 0)          # images published, per camera
        self._camera_rates: dict[str, tuple[float, float]] = {}   # per s of sim time, per s of wall time
        self._listening = self._listeners()
        watch(self, p, self._on_parameters)
        self._thread = threading.Thread(target=self._physics_loop, name='physics', daemon=True)
        self._thread.start()
        self.get_logger().info(
            f'{robot.name} on task {self.sim.task.name!r} (seed {self.sim.seed}), '
            f'cameras {list(self.cameras)}, real_time_factor {self.rtf:g}'
            + (', paused' if self._paused else ''))

    # --- TF: the robot from its URDF at MuJoCo's joint positions, the scene from MuJoCo ---

    def _robot_state(self, robot) -> RobotStatePublisher | None:
        if robot.urdf_path is None:
            self.get_logger().warning(f'{robot.name} has no URDF: no robot_description and no TF')
            return None
        state = RobotStatePublisher(self, robot, self.p.frame_prefix)
        kinematics = state.kinematics
        # A URDF link is the MJCF body of the same name, with or without "_link".
        self._body_link = {link.removesuffix('_link'): link for link in kinematics.links}
        self._body_link.update({link: link for link in kinematics.links})
        root_body = next(b for b, link in self._body_link.items()
                         if link == kinematics.root and b in self._body_names())
        self._world_root = self.sim.body_pose(root_body)
        state.add_static_frames([('world', state.frame(kinematics.root), self._world_root)])
        self._publish_object_markers()
        return state

    def _publish_object_markers(self) -> None:
        """The task's objects for RViz: one marker each, locked to the object's TF frame,
        so one latched message follows them as they move. Again after a reset."""
        shapes = {'box': Marker.CUBE, 'sphere': Marker.SPHERE, 'cylinder': Marker.CYLINDER}
        markers = MarkerArray(markers=[Marker(action=Marker.DELETEALL)])
        for i, spec in enumerate(self.sim.task.objects):
            marker = Marker(ns='objects', id=i, type=shapes[spec.shape], action=Marker.ADD,
                            frame_locked=True)
            marker.header.frame_id = spec.name
            marker.pose.orientation.w = 1.0
            marker.scale.x, marker.scale.y, marker.scale.z = (float(v) for v in spec.extents)
            marker.color.r, marker.color.g, marker.color.b, marker.color.a = (float(v) for v in spec.rgba)
            markers.markers.append(marker)
        self.marker_pub.publish(markers)

    def _body_names(self) -> set[str]:
        return {self.sim.model.body(i).name for i in range(self.sim.model.nbody)}

    def _camera_frames(self, cameras) -> list:
        """Each camera's optical frame, fixed to the world or to the URDF link of its body."""
        state, frames = self.robot_state, []
        links = state.kinematics.link_poses(dict(zip(self.sim.joint_names, self.sim.joint_positions())))
        for name in cameras:
            body, body_camera = self.sim.camera_pose(name)
            optical = body_camera @ OPTICAL_FROM_GL
            child = state.frame(f'{name}_optical_frame')
            if body == 'world':
                frames.append(('world', child, optical))
            elif body in self._body_link:
                link = self._body_link[body]
                world_link = self._world_root @ links[link]
                frames.append((state.frame(link), child,
                               np.linalg.inv(world_link) @ self.sim.body_pose(body) @ optical))
            else:
                self.get_logger().warning(f'camera {name}: body {body!r} has no URDF link; no TF frame')
        return frames

    def _publish_tf(self, stamp: Time, position: np.ndarray) -> None:
        start = time.perf_counter()
        objects = [('world', name, self.sim.body_pose(body))
                   for name, body in self.sim.scene.object_bodies.items()]
        if self.robot_state.publish(stamp, dict(zip(self.sim.joint_names, position)), objects):
            self._tf_cost.append(time.perf_counter() - start)

    def _listeners(self) -> dict[str, bool]:
        """Which publications have readers. Looked up a few times a second, not per
        message: a message nobody reads is not built (free-running, that is most of
        the node's work)."""
        listening = {'clock': self.clock_pub.get_subscription_count() > 0,
                     'joints': self.joint_pub.get_subscription_count() > 0}
        for name, (image_pub, info_pub, _) in self.cameras.items():
            listening[name] = image_pub.get_subscription_count() > 0
            listening[name + '/info'] = info_pub.get_subscription_count() > 0
        return listening

    @staticmethod
    def _periods_from(p: SimParameters) -> dict[str, float]:
        return {'clock': 1.0 / p.clock_rate, 'joints': 1.0 / p.joint_state_rate,
                'status': 1.0 / p.task_status_rate, 'camera': 1.0 / p.camera_rate}

    def _on_parameters(self, names) -> str:
        # Plain attribute swaps: the physics thread reads each once per use.
        self._periods = self._periods_from(self.p)
        if 'real_time_factor' in names:
            self.rtf = self.p.real_time_factor
            self._sync_wall()
        return ''

    def _measured_positions(self):
        with self.lock:
            return self.sim.joint_positions()

    # --- service callbacks (executor thread) ---------------------------------

    def _submit(self, kind: str, *args, timeout: float = 30.0) -> str:
        request = _Request(kind, args, threading.Event())
        self._requests.put(request)
        if not request.done.wait(timeout):
            return f'{kind} timed out after {timeout:.0f} s'
        return request.error

    def _on_reset(self, req: ResetSim.Request, res: ResetSim.Response):
        error = self._submit('reset', req.task or None, req.seed)
        res.success, res.message = not error, error or (
            f'reset to {self.sim.task.name!r} with seed {req.seed}')
        return res

    def _on_step(self, req: StepSim.Request, res: StepSim.Response):
        if not self._paused:
            res.success, res.message = False, 'step is only allowed while paused (call ~/pause first)'
        else:
            error = self._submit('step', req)
            res.success, res.message = not error, error or f'stepped to {self.sim.time:.3f} s'
        res.sim_time = time_msg(self.sim.time)
        return res

    def _on_pause(self, req: SetBool.Request, res: SetBool.Response):
        if self.p.lockstep and not req.data:
            res.success, res.message = False, 'lockstep: the sim advances only through ~/step'
            return res
        self._paused = bool(req.data)
        res.success, res.message = True, 'paused' if self._paused else 'running'
        return res

    # --- physics thread ---------------------------------------------------------

    def _handle(self, request: _Request) -> None:
        try:
            if request.kind == 'reset':
                task, seed = request.args
                with self.lock:
                    self.sim.reset(task, seed)
                    self.follower.hold(self.sim.targets())
                self._schedule_from(self.sim.time)
                if self.robot_state:
                    self._publish_object_markers()     # a new task may bring other objects
                self._sync_wall()
            else:
                request.error = self._step_request(*request.args)
        except (TaskError, RobotDescriptionError, ValueError) as e:
            request.error = str(e)
        finally:
            request.done.set()

    def _step_request(self, req: StepSim.Request) -> str:
        """A ~/step request: command, steps, then the observation (see StepSim.srv)."""
        if req.trajectory.points:
            refusal = self.commands.command(req.trajectory)
            if refusal:
                return f'trajectory refused: {refusal}'
        until = to_seconds(req.until)
        steps = int(req.steps)
        if until > 0.0:
            steps = max(steps, math.ceil((until - self.sim.time) / self.sim.timestep - 1e-6))
        for _ in range(steps):
            self._step_once()
        if req.observe:
            t = self.sim.time
            for kind in ('joints', 'status', 'camera'):
                if self._published.get(kind) != t:
                    self._next[kind] = t
            self._next_event = t
            self._publish_due(time.perf_counter())
        return ''

    def _sync_wall(self) -> None:
        self._wall0, self._sim0 = time.perf_counter(), self.sim.time

    def _step_once(self, batch: bool = False) -> None:
        """Advance physics and publish what is due.

        With ``batch``, steps up to the next publication (/clock included) in one
        mj_step call when no trajectory is running (one needs a target per step):
        free-running gets ~2x faster.
        """
        with self.lock:
            t = self.sim.time
            if self.follower.active:
                self.sim.set_targets(self.limits.clip(self.follower.sample(t)))
                n = 1
            elif batch:
                n = max(1, math.ceil((self._next_event - t) / self.sim.timestep - 1e-6))
            else:
                n = 1
            self.sim.step(n)
        if self.sim.time >= self._next_event:
            self._publish_due(time.perf_counter())

    def _publish_due(self, stepped: float) -> None:
        """Publish what is due at the current sim time; ``stepped``: perf_counter of the step."""
        t = self.sim.time
        stamp = time_msg(t)
        due = [k for k, when in self._next.items() if t >= when - 1e-9]
        for k in due:
            self._published[k] = t
            # Next period; after a stall (reset, slow render) skip, don't burst.
            self._next[k] = max(self._next[k] + self._periods[k], t + 0.5 * self._periods[k])
        if stepped - self._listeners_checked > LISTENERS_PERIOD:
            self._listeners_checked = stepped
            self._listening = self._listeners()
        if 'clock' in due and self._listening['clock']:
            self._clock_msg.clock = stamp         # one message, reused: this runs at 100+ Hz
            self.clock_pub.publish(self._clock_msg)
        tf_due = self.robot_state is not None and stepped - self._tf_wall >= 1.0 / self.p.tf_rate
        if 'joints' in due and (self._listening['joints'] or tf_due):
            with self.lock:
                position, velocity = self.sim.joint_positions(), self.sim.joint_velocities()
                effort = self.sim.joint_efforts()
            if self._listening['joints']:
                self.joint_pub.publish(joint_state_msg(self.sim.joint_names, stamp, position, velocity, effort))
                self._publish_latency.append(time.perf_counter() - stepped)
            if tf_due:             # /tf goes out with joint_states, at most tf_rate per wall second
                self._tf_wall = stepped
                self._publish_tf(stamp, position)
        if 'status' in due:
            self._publish_status(stamp)
        if 'camera' in due:
            self._publish_cameras(stamp)
        self._next_event = min(self._next.values()) - 1e-9

    def _publish_status(self, stamp: Time) -> None:
        status = self.sim.status()
        msg = TaskStatus(task=status.task, seed=status.seed, success=status.success,
                         elapsed=status.elapsed)
        msg.header.stamp, msg.header.frame_id = stamp, 'world'
        for name, (xyz, quat) in status.object_poses.items():
            pose = Pose()
            pose.position.x, pose.position.y, pose.position.z = (float(v) for v in xyz)
            pose.orientation.w, pose.orientation.x, pose.orientation.y, pose.orientation.z = (
                float(v) for v in quat)
            msg.object_names.append(name)
            msg.object_poses.append(pose)
        self.status_pub.publish(msg)

    def _publish_cameras(self, stamp: Time) -> None:
        """camera_info to its subscribers, whether or not the image has any (a client may
        need the intrinsics before it wants images); images only while subscribed:
        rendering is the sim's costliest work."""
        width, height = self.cam_size
        for name, (image_pub, info_pub, info) in self.cameras.items():
            info.header.stamp = stamp
            if self._listening[name]:
                pixels = self.sim.render(name, width, height)
                image = Image(height=height, width=width, encoding='rgb8', is_bigendian=0,
                              step=3 * width, data=pixels.tobytes())
                image.header = info.header
                image_pub.publish(image)
                self._frames[name] += 1
            if self._listening[name + '/info']:
                info_pub.publish(info)

    def _publish_diagnostics(self) -> None:
        level, message = OK, 'paused' if self._paused else f'real-time factor {self._measured_rtf:.2f}'
        if not self._paused and self.rtf > 0 and self._measured_rtf < 0.9 * self.rtf:
            level, message = WARN, message + f' (below the requested {self.rtf:g})'
        status = diagnostic_status('sim: physics', level, message, self.sim.robot.name, (
            ('real_time_factor', f'{self._measured_rtf:.3f}'),
            ('requested_real_time_factor', f'{self.rtf:g}'),
            ('sim_time', f'{self.sim.time:.3f}'),
            ('task', self.sim.task.name), ('seed', self.sim.seed),
            ('refused_commands', self.commands.refused),
            *self._camera_values(),
            *self._latency_values()))
        self.diag_pub.publish(diagnostic_array(time_msg(self.sim.time), [status]))   # one clock: sim time

    def _camera_values(self) -> list[tuple[str, str]]:
        """Images delivered in the last window, per second of sim time (the camera_rate
        when none is skipped) and of wall time; 0 for a camera nobody subscribes to."""
        return [(f'camera_{name}_hz', f'{sim_rate:.2f}') for name, (sim_rate, _) in self._camera_rates.items()] + \
            [(f'camera_{name}_hz_wall', f'{wall_rate:.2f}') for name, (_, wall_rate) in self._camera_rates.items()]

    def _schedule_from(self, t: float) -> None:
        self._next = dict.fromkeys(self._periods, t)
        self._next_event = t

    def _latency_values(self) -> list[tuple[str, str]]:
        values = []
        for name, samples in (('joint_states_publish_latency', self._publish_latency),
                              ('tf_publish', self._tf_cost)):
            samples = sorted(samples)
            if samples:
                values += [(f'{name}_p50_ms', f'{1e3 * samples[len(samples) // 2]:.3f}'),
                           (f'{name}_p99_ms', f'{1e3 * samples[int(len(samples) * 0.99)]:.3f}')]
        return values

    def _physics_loop(self) -> None:
        self._schedule_from(self.sim.time)
        self._sync_wall()
        diag_wall, diag_sim = time.perf_counter(), self.sim.time
        frames = dict(self._frames)
        try:
            while self._running:
                while not self._requests.empty():
                    self._handle(self._requests.get_nowait())
                now = time.perf_counter()
                if now - diag_wall >= 1.0:
                    self._measured_rtf = (self.sim.time - diag_sim) / (now - diag_wall)
                    sim_span = max(self.sim.time - diag_sim, 1e-9)
                    self._camera_rates = {name: ((self._frames[name] - frames[name]) / sim_span,
                                                 (self._frames[name] - frames[name]) / (now - diag_wall))
                                          for name in self._frames}
                    frames = dict(self._frames)
                    diag_wall, diag_sim = now, self.sim.time
                    self._publish_diagnostics()
                if self._paused:
                    # Wait for a request rather than poll: in lockstep a step request
                    # is on every control tick's path.
                    try:
                        self._handle(self._requests.get(timeout=0.02))
                    except queue.Empty:
                        pass
                    self._sync_wall()
                    continue
                self._step_once(batch=True)
                if self.rtf > 0:
                    ahead = (self.sim.time - self._sim0) / self.rtf - (time.perf_counter() - self._wall0)
                    if ahead > 0.001:
                        time.sleep(ahead)
                    elif ahead < -0.25:
                        self._sync_wall()  # fell behind: don't sprint to catch up
        except Exception as e:  # noqa: BLE001 - report, then let the process exit
            if not self.context.ok():
                return  # Ctrl-C shut the context down under us: a normal stop.
            self.get_logger().fatal(f'physics loop failed: {e!r}')
            self.failed = True
            raise
        finally:
            self.sim.close_renderers()

    @property
    def alive(self) -> bool:
        return self._running and self._thread is not None and self._thread.is_alive()

    def destroy_node(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if self.commands is not None:
            self.commands.destroy()
        super().destroy_node()


def main(args=None) -> int:
    # One executor thread, as the hardware node: commands, services and the action
    # (a coroutine) never block it for long, and rclpy's multi-threaded executor
    # spins on its queued tasks under a 100 Hz command stream.
    return run_node('sim', SimNode, (RobotDescriptionError, TaskError, ValueError),
                    alive=lambda node: node.alive, failed=lambda node: node.failed, args=args)


if __name__ == '__main__':
    raise SystemExit(main())
