"""ROS 2 node for a real SO-101 follower arm: the sim node's contract on Feetech servos.

rclpy glue around ``So101Bus`` (LeRobot's Feetech driver, LeRobot's
calibration file), ``So101Controller`` (the control loop and its safety
rules) and ``Camera`` (OpenCV). Topics, units and the command interface are
the simulation's, from ``robosandbox_control``; on top come the hardware's
own services ``~/emergency_stop`` and ``~/enable`` and ``/diagnostics`` with
the bus's errors, retries, temperatures, voltages and loop rate.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import Trigger

from robosandbox_control.arm_interface import ArmCommandInterface, ArmParameters, joint_state_msg, time_msg
from robosandbox_control.messages import camera_info, diagnostic_array, diagnostic_status, ERROR, OK, WARN
from robosandbox_control.parameters import declare, given, parameter, watch
from robosandbox_control.qos import CAMERA_INFO_QOS, IMAGE_QOS
from robosandbox_control.ros_logging import log_to_ros
from robosandbox_control.robot_state import OPTICAL_FROM_GL, RobotStatePublisher
from robosandbox_control.spinning import run_node
from robosandbox_control.trajectory import JointLimits, TrajectoryFollower
from robosandbox_hw.cameras import Camera, CameraConfig, CameraError
from robosandbox_hw.controller import (
    ArmMode, ControllerConfig, SafetyLimits, So101Controller)
from robosandbox_hw.so101_bus import (
    BusError, calibration_path, CalibrationError, So101Bus, So101BusConfig)
from robosandbox_description.robot import load_robot, RobotDescriptionError


def _positive(values) -> str:
    return '' if all(v > 0 for v in values) else 'every value must be above 0'


def _per_joint_problem(what: str, values, joints) -> str:
    """Why a per-joint parameter does not fit the joints, or ''."""
    if len(values) == len(joints):
        return ''
    return f'{what} needs {len(joints)} values ({list(joints)}), got {len(values)}'


@dataclass
class So101Parameters(ArmParameters):
    """Parameters of ``so101``. The bus, cameras and position limits are fixed at start;
    speeds and the watchdog are live, so they can be turned down on a running arm."""

    port: str = parameter('/dev/ttyACM0', 'Serial port of the servo bus adapter.', read_only=True)
    baudrate: int = parameter(1_000_000, 'Servo bus baud rate (the STS3215 default is 1000000).',
                              read_only=True, range=(9600, 1_000_000))
    robot_id: str = parameter('so101', 'LeRobot robot id: the calibration is <LeRobot calibration dir>/'
                                       'robots/so_follower/<robot_id>.json.', read_only=True)
    calibration_file: str = parameter('', 'LeRobot calibration JSON overriding the one found from robot_id.',
                                      read_only=True)
    robot: str = parameter('so101', 'Robot description (joint names, limits, home, gripper range): '
                                    'a packaged name or a sidecar YAML.', read_only=True)
    joint_lower: list = parameter(None, "Lower joint limits, rad, one per joint; default: the robot "
                                        "description's.", read_only=True, item_type=float)
    joint_upper: list = parameter(None, "Upper joint limits, rad, one per joint; default: the robot "
                                        "description's.", read_only=True, item_type=float)
    max_velocity: list = parameter(None, "Velocity limit per joint, rad/s: faster commands are slowed to it; "
                                         "default: the robot description's.", item_type=float,
                                   range=(0.0, 10.0), validate=_positive)
    first_motion_velocity: float = parameter(0.2, 'Speed limit, rad/s, from each enable until the first '
                                                  'commanded target is reached.', range=(0.01, 10.0))
    control_rate: float = parameter(100.0, 'Read-state/write-goal loop rate, Hz; joint_states is published '
                                           'at this rate.', read_only=True, range=(1.0, 1000.0))
    command_timeout: float = parameter(0.5, 'Watchdog, as joint_trajectory_controller cmd_timeout: this long '
                                            '(s) after the last point of the latest streamed trajectory, an arm '
                                            'still short of it holds where it is.', range=(0.01, 60.0))
    bus_retries: int = parameter(2, 'Retries of a failed bus transaction before it counts as failed.',
                                 read_only=True, range=(0, 10))
    max_consecutive_failures: int = parameter(5, 'Failed control cycles in a row that put the arm in the '
                                                 'error state.', read_only=True, range=(1, 1000))
    on_error: str = parameter('hold', "In the error state: 'hold' (servos keep their last goal) or "
                                      "'release' (torque off).", read_only=True,
                              validate=lambda v: '' if v in ('hold', 'release') else "use 'hold' or 'release'")
    enable_on_start: bool = parameter(True, 'Torque on at start, holding the present pose (else call ~/enable).',
                                      read_only=True)
    connect_timeout: float = parameter(10.0, 'Seconds to keep trying to open the port and find the servos.',
                                       read_only=True, range=(0.0, 3600.0))
    camera_names: list = parameter([], 'Cameras to publish as cameras/<name>/image_raw.', read_only=True,
                                   item_type=str)
    camera_devices: list = parameter([], 'One per camera: /dev/videoN, an index, or a video file (played in '
                                         'a loop).', read_only=True, item_type=str)
    camera_width: int = parameter(640, 'Camera image width, pixels.', read_only=True, range=(1, 8192))
    camera_height: int = parameter(480, 'Camera image height, pixels.', read_only=True, range=(1, 8192))
    camera_fps: float = parameter(30.0, 'Camera rate, Hz.', read_only=True, range=(0.1, 1000.0))
    camera_hfov: float = parameter(70.0, 'Nominal horizontal field of view for camera_info, degrees.',
                                   read_only=True, range=(1.0, 179.0))


class So101Node(Node):

    def __init__(self, **kwargs):
        super().__init__('so101', **kwargs)
        # What destroy_node releases, set before anything can fail: rclpy may destroy
        # a node whose start was cut short (a camera error, Ctrl-C during connect).
        self.cameras: list[Camera] = []
        self.bus: So101Bus | None = None
        self.controller: So101Controller | None = None
        self.commands: ArmCommandInterface | None = None
        log_to_ros('robosandbox_hw', self.get_logger())
        # The description is read before the parameters: it gives the limits' defaults.
        robot = load_robot(given(self, So101Parameters, 'robot'))
        self.p = p = declare(self, So101Parameters, joint_lower=list(robot.lower), joint_upper=list(robot.upper),
                             max_velocity=list(robot.max_velocity))
        names = robot.joints
        lower, upper = np.array(p.joint_lower), np.array(p.joint_upper)
        velocity = np.array(p.max_velocity)
        for what in ('joint_lower', 'joint_upper', 'max_velocity'):
            problem = _per_joint_problem(what, getattr(p, what), names)
            if problem:
                raise ValueError(problem)
        if np.any(lower >= upper):
            raise ValueError(f'joint_lower must be below joint_upper for every joint: {lower} vs {upper}')
        self.limits = JointLimits(names, lower, upper)
        deadline = time.monotonic() + p.connect_timeout
        while not os.path.exists(p.port) and time.monotonic() < deadline:
            time.sleep(0.2)        # a USB adapter being plugged in, an emulator starting
        self.bus = So101Bus(So101BusConfig(
            port=p.port, baudrate=p.baudrate,
            calibration_file=calibration_path(p.robot_id, p.calibration_file),
            gripper_range=robot.gripper_range,
            joints=names, gripper_joint=robot.gripper_joint, retries=p.bus_retries))
        self._connect(deadline)
        try:
            self._start(robot, p, names, lower, upper, velocity)
        except BaseException:
            # Whatever stops the start (a camera, Ctrl-C) must not leave the arm powered.
            self._release_hardware()
            raise

    def _start(self, robot, p, names, lower, upper, velocity) -> None:
        self.lock = threading.Lock()
        self.follower = TrajectoryFollower(np.zeros(len(names)))
        self.commands = ArmCommandInterface(
            self, self.limits, self.follower, self.lock, now=time.time,
            measured=self._measured, home=[robot.home[j] for j in names],
            parameters=p, refusal=self._refusal, on_command=self._command_arrived)
        self.joint_pub = self.create_publisher(JointState, 'joint_states', 100)
        # The robot and its links from the description's kinematics at the measured joints;
        # the optical frame of each camera the description mounts on a link (the wrist
        # camera). Other mounts are the user's: a static_transform_publisher to
        # <name>_optical_frame, the frame_id camera_info gives.
        self.robot_state = RobotStatePublisher(self, robot, p.frame_prefix) if robot.urdf_path else None
        if self.robot_state:
            mounts = {c.name: c for c in robot.cameras if c.link}
            self.robot_state.add_static_frames(
                (self.robot_state.frame(mounts[name].link), self.robot_state.frame(f'{name}_optical_frame'),
                 mounts[name].pose() @ OPTICAL_FROM_GL)
                for name in p.camera_names if name in mounts)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_service(Trigger, '~/emergency_stop', self._on_emergency_stop)
        self.create_service(Trigger, '~/enable', self._on_enable)
        self.controller = So101Controller(
            self.bus,
            SafetyLimits(lower, upper, velocity, p.first_motion_velocity),
            ControllerConfig(rate=p.control_rate,
                             max_consecutive_failures=p.max_consecutive_failures,
                             on_error=p.on_error, command_timeout=p.command_timeout),
            self.follower, self.lock,
            stream_stalled=self.commands.stream_stalled,
            on_state=self._publish_state)
        self._open_cameras(p)
        watch(self, p, self._on_parameters)
        self.controller.start(enable=p.enable_on_start)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f'SO-101 on {p.port} ({p.baudrate} baud), calibration '
            f'{self.bus.config.calibration_file}, {self.controller.mode.value}, '
            f'cameras {[c.config.name for c in self.cameras]}')

    # --- setup ------------------------------------------------------------------------

    def _connect(self, deadline: float) -> None:
        while True:
            try:
                self.bus.connect()
                return
            except ConnectionError as e:
                if time.monotonic() > deadline:
                    raise ConnectionError(
                        # One line: LeRobot's message spans two.
                        f'no SO-101 on {self.bus.config.port}: {" ".join(str(e).split())}') from None
                time.sleep(0.5)

    def _open_cameras(self, p) -> None:
        """Open each camera into self.cameras, so one that fails leaves the others closable."""
        names, devices = p.camera_names, p.camera_devices
        if len(names) != len(devices):
            raise ValueError(f'camera_names {names} and camera_devices {devices} differ in length')
        for name, device in zip(names, devices):
            config = CameraConfig(name, device, p.camera_width, p.camera_height, p.camera_fps, p.camera_hfov)
            image_pub = self.create_publisher(Image, f'cameras/{name}/image_raw', IMAGE_QOS)
            info_pub = self.create_publisher(CameraInfo, f'cameras/{name}/camera_info', CAMERA_INFO_QOS)
            self.cameras.append(Camera(config, self._frame_publisher(config, image_pub, info_pub)))

    def _frame_publisher(self, config: CameraConfig, image_pub, info_pub):
        info = camera_info(config.intrinsics(), f'{self.p.frame_prefix}{config.name}_optical_frame')

        def publish(stamp: float, rgb: np.ndarray) -> None:
            # camera_info with every frame, subscribed or not, as the sim does.
            info.header.stamp = time_msg(stamp)
            if image_pub.get_subscription_count() > 0:
                image = Image(height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8',
                              step=3 * rgb.shape[1], data=rgb.tobytes())
                image.header.stamp, image.header.frame_id = info.header.stamp, info.header.frame_id
                image_pub.publish(image)
            info_pub.publish(info)
        return publish

    def _on_parameters(self, names) -> str:
        p, limits = self.p, self.controller.limiter.limits
        problem = _per_joint_problem('max_velocity', p.max_velocity, self.limits.names)
        if problem:
            return problem
        # Attribute swaps the control thread picks up on its next cycle.
        limits.max_velocity = np.array(p.max_velocity)
        limits.first_motion_velocity = p.first_motion_velocity
        self.controller.config.command_timeout = p.command_timeout
        return ''

    # --- state and commands ---------------------------------------------------------------

    def _measured(self) -> np.ndarray:
        position = self.controller.position
        return position if position is not None else self.follower.target

    def _refusal(self) -> str:
        mode = self.controller.mode
        if mode is ArmMode.ACTIVE:
            return ''
        why = f': {self.controller.error}' if self.controller.error else ''
        return f'arm is in {mode.value}{why}; call {self.get_fully_qualified_name()}/enable'

    def _publish_state(self, stamp: float, position: np.ndarray, velocity: np.ndarray) -> None:
        try:
            ros_stamp = time_msg(stamp)
            self.joint_pub.publish(joint_state_msg(self.limits.names, ros_stamp, position, velocity))
            if self.robot_state:
                self.robot_state.publish(ros_stamp, dict(zip(self.limits.names, position)))
        except Exception:
            if self.context.ok():
                raise       # shutting down, the context is gone: the loop is about to stop

    def _on_emergency_stop(self, _request, response: Trigger.Response) -> Trigger.Response:
        problem = self.controller.emergency_stop()
        response.success = not problem
        response.message = problem or 'torque off; call ~/enable to drive again'
        self.get_logger().warning('emergency stop requested: ' + response.message)
        return response

    def _on_enable(self, _request, response: Trigger.Response) -> Trigger.Response:
        problem = self.controller.enable()
        response.success = not problem
        response.message = problem or 'torque on, holding the present pose; first motion is slow'
        return response

    # --- diagnostics -----------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        c, counters = self.controller, self.bus.counters
        level = {ArmMode.ACTIVE: OK, ArmMode.TORQUE_OFF: OK, ArmMode.EMERGENCY_STOP: WARN}.get(c.mode, ERROR)
        values = [('mode', c.mode.value), ('error', c.error),
                  ('loop_rate_hz', f'{c.loop_rate:.1f}'),
                  ('transactions', counters.transactions), ('retries', counters.retries),
                  ('failed_transactions', counters.failures), ('last_bus_error', counters.last_error),
                  ('watchdog_trips', c.watchdog_trips), ('refused_commands', self.commands.refused),
                  ('calibration_written_to_servos', counters.calibration_written)]
        for key, array in c.health.items():
            values += [(f'{j}.{key}', f'{v:g}') for j, v in zip(self.limits.names, array)]
        statuses = [diagnostic_status('so101: servo bus', level, c.mode.value + (f': {c.error}' if c.error else ''),
                                      self.bus.config.port, values)]
        for camera in self.cameras:
            statuses.append(diagnostic_status(
                f'so101: camera {camera.config.name}', OK if camera.frames else WARN,
                f'{camera.frames} frames, {camera.failures} failed reads', camera.config.device))
        self.diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), statuses))

    @property
    def alive(self) -> bool:
        return self.controller.alive

    def _release_hardware(self) -> None:
        """Cameras closed, torque off; safe to call again. The control thread, if it
        runs, stops first so torque-off has the bus."""
        for camera in self.cameras:
            camera.close()
        self.cameras = []
        if self.controller is not None:
            self.controller.stop()
        elif self.bus is not None:
            self.bus.close(torque_off=True)

    def _command_arrived(self) -> None:
        if self.controller is not None:
            self.controller.command_arrived()

    def destroy_node(self) -> None:
        self._release_hardware()
        if self.commands is not None:
            self.commands.destroy()
        super().destroy_node()


SETUP_ERRORS = (BusError, CalibrationError, CameraError, ConnectionError, RobotDescriptionError,
                ValueError)


def main(args=None) -> int:
    # One executor thread: no callback blocks (home and action goals are coroutines),
    # and rclpy's multi-threaded executor, under a 100 Hz command stream, spun on
    # its queued tasks and starved the control thread of the GIL (the loop fell
    # from 100 to 40 Hz, with bus timeouts).
    return run_node('so101', So101Node, SETUP_ERRORS, alive=lambda node: node.alive,
                    failed=lambda node: node.controller.crashed, args=args)


if __name__ == '__main__':
    raise SystemExit(main())
