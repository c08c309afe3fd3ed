"""ROS 2 node for a real SO-101 follower arm: the sim node's contract on Feetech servos.

rclpy glue around ``So101Bus`` (LeRobot's Feetech driver, LeRobot's
calibration file), ``So101Controller`` (the control loop and its safety
rules) and ``Camera`` (OpenCV). Topics, units and the command interface are
the simulation's, from ``robosandbox_control``; on top come the hardware's
own services ``~/emergency_stop`` and ``~/enable`` and ``/diagnostics`` with
the bus's errors, retries, temperatures, voltages and loop rate.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import Trigger

from robosandbox_control.arm_interface import ArmCommandInterface, joint_state_msg, time_msg
from robosandbox_control.parameters import declare_parameters
from robosandbox_control.qos import CAMERA_INFO_QOS, IMAGE_QOS
from robosandbox_control.spinning import spin_node
from robosandbox_control.trajectory import JointLimits, TrajectoryFollower
from robosandbox_hw.cameras import Camera, CameraConfig, CameraError
from robosandbox_hw.controller import (
    ArmMode, ControllerConfig, SafetyLimits, So101Controller)
from robosandbox_hw.so101_bus import (
    BusError, calibration_path, CalibrationError, So101Bus, So101BusConfig)
from robosandbox_sim.kinematics import ArmKinematics
from robosandbox_sim.robot import load_robot, RobotDescriptionError

PARAMETERS = {
    # name: (default, description)
    'port': ('/dev/ttyACM0', 'Serial port of the servo bus adapter.'),
    'baudrate': (1_000_000, 'Servo bus baud rate (the STS3215 default is 1000000).'),
    'robot_id': ('so101', "LeRobot robot id: the calibration is <LeRobot calibration dir>/robots/so_follower/<robot_id>.json."),
    'calibration_file': ('', 'LeRobot calibration JSON overriding the one found from robot_id.'),
    'robot': ('so101', 'Robot description (joint names, limits, home, gripper range): a packaged name or a sidecar YAML.'),
    'joint_lower': (Parameter.Type.DOUBLE_ARRAY, 'Lower joint limits, rad, one per joint; unset: the robot model\'s.'),
    'joint_upper': (Parameter.Type.DOUBLE_ARRAY, 'Upper joint limits, rad, one per joint; unset: the robot model\'s.'),
    'max_velocity': ([1.5, 1.5, 1.5, 2.0, 2.0, 3.0], 'Velocity limit per joint, rad/s: faster commands are slowed to it.'),
    'first_motion_velocity': (0.2, 'Speed limit, rad/s, from each enable until the first commanded target is reached.'),
    'home_velocity': (0.5, 'Fastest joint speed on the way to the home pose (home service), rad/s.'),
    'control_rate': (100.0, 'Read-state/write-goal loop rate, Hz; joint_states is published at this rate.'),
    'command_timeout': (0.5, 'Watchdog: a streamed trajectory with no new message for this long (s) stops and holds.'),
    'bus_retries': (2, 'Retries of a failed bus transaction before it counts as failed.'),
    'max_consecutive_failures': (5, 'Failed control cycles in a row that put the arm in the error state.'),
    'on_error': ('hold', "In the error state: 'hold' (servos keep their last goal) or 'release' (torque off)."),
    'enable_on_start': (True, 'Torque on at start, holding the present pose (else call ~/enable).'),
    'connect_timeout': (10.0, 'Seconds to keep trying to open the port and find the servos.'),
    'camera_names': ([], 'Cameras to publish as cameras/<name>/image_raw.'),
    'camera_devices': ([], 'One per camera: /dev/videoN, an index, or a video file (played in a loop).'),
    'camera_width': (640, 'Camera image width, pixels.'),
    'camera_height': (480, 'Camera image height, pixels.'),
    'camera_fps': (30.0, 'Camera rate, Hz.'),
    'camera_hfov': (70.0, 'Nominal horizontal field of view for camera_info, degrees.'),
}


class _RosLogHandler(logging.Handler):
    """Python logging of the ROS-free core (bus, controller) into the node's ROS log."""

    def __init__(self, ros_logger):
        super().__init__(logging.INFO)
        self._ros = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += '\n' + logging.Formatter().formatException(record.exc_info)
        if record.levelno >= logging.ERROR:
            self._ros.error(text)
        elif record.levelno >= logging.WARNING:
            self._ros.warning(text)
        else:
            self._ros.info(text)


class So101Node(Node):

    def __init__(self, **kwargs):
        super().__init__('so101', **kwargs)
        core = logging.getLogger('robosandbox_hw')
        core.setLevel(logging.INFO)
        core.propagate = False
        core.handlers = [_RosLogHandler(self.get_logger())]
        p = declare_parameters(self, PARAMETERS)
        robot = load_robot(p['robot'])
        kinematics = ArmKinematics(robot)
        names = robot.joints
        lower = np.array(p['joint_lower'] if p['joint_lower'] is not None else kinematics.joint_lower)
        upper = np.array(p['joint_upper'] if p['joint_upper'] is not None else kinematics.joint_upper)
        velocity = np.array(p['max_velocity'], dtype=float)
        for what, values in (('joint_lower', lower), ('joint_upper', upper), ('max_velocity', velocity)):
            if len(values) != len(names):
                raise ValueError(f'{what} needs {len(names)} values ({list(names)}), got {len(values)}')
        if np.any(velocity <= 0) or p['first_motion_velocity'] <= 0:
            raise ValueError('velocity limits must be positive')
        self.limits = JointLimits(names, lower, upper)
        g = names.index(robot.gripper_joint)
        model_lower, model_upper = kinematics.joint_lower, kinematics.joint_upper
        deadline = time.monotonic() + p['connect_timeout']
        while not os.path.exists(p['port']) and time.monotonic() < deadline:
            time.sleep(0.2)        # a USB adapter being plugged in, an emulator starting
        self.bus = So101Bus(So101BusConfig(
            port=p['port'], baudrate=p['baudrate'],
            calibration_file=calibration_path(p['robot_id'], p['calibration_file']),
            gripper_range=(float(model_lower[g]), float(model_upper[g])),
            joints=names, gripper_joint=robot.gripper_joint, retries=p['bus_retries']))
        self._connect(deadline)
        try:
            self._start(robot, p, names, lower, upper, velocity)
        except BaseException:
            # Whatever stops the start (a camera, Ctrl-C) must not leave the arm powered;
            # the control thread, if it runs, stops first so torque-off has the bus.
            controller = getattr(self, 'controller', None)
            if controller is not None:
                controller.stop()
            else:
                self.bus.close(torque_off=True)
            raise

    def _start(self, robot, p, names, lower, upper, velocity) -> None:
        self.lock = threading.Lock()
        self.follower = TrajectoryFollower(np.zeros(len(names)))
        self.commands = ArmCommandInterface(
            self, self.limits, self.follower, self.lock, now=time.time,
            measured=self._measured, home=[robot.home[j] for j in names],
            home_velocity=p['home_velocity'], refusal=self._refusal)
        self.joint_pub = self.create_publisher(JointState, 'joint_states', 100)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_service(Trigger, '~/emergency_stop', self._on_emergency_stop)
        self.create_service(Trigger, '~/enable', self._on_enable)
        self.controller = So101Controller(
            self.bus,
            SafetyLimits(lower, upper, velocity, p['first_motion_velocity']),
            ControllerConfig(rate=p['control_rate'],
                             max_consecutive_failures=p['max_consecutive_failures'],
                             on_error=p['on_error'], command_timeout=p['command_timeout']),
            self.follower, self.lock,
            stream_stalled=self.commands.stream_stalled,
            on_state=self._publish_state)
        self.cameras = self._open_cameras(p)
        self.controller.start(enable=p['enable_on_start'])
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f'SO-101 on {p["port"]} ({p["baudrate"]} baud), calibration '
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
                        f'no SO-101 on {self.bus.config.port}: {str(e).strip()}') from None
                time.sleep(0.5)

    def _open_cameras(self, p) -> list[Camera]:
        names, devices = p['camera_names'], p['camera_devices']
        if len(names) != len(devices):
            raise ValueError(f'camera_names {names} and camera_devices {devices} differ in length')
        cameras = []
        for name, device in zip(names, devices):
            config = CameraConfig(name, device, p['camera_width'], p['camera_height'],
                                  p['camera_fps'], p['camera_hfov'])
            image_pub = self.create_publisher(Image, f'cameras/{name}/image_raw', IMAGE_QOS)
            info_pub = self.create_publisher(CameraInfo, f'cameras/{name}/camera_info', CAMERA_INFO_QOS)
            cameras.append(Camera(config, self._frame_publisher(config, image_pub, info_pub)))
        return cameras

    def _frame_publisher(self, config: CameraConfig, image_pub, info_pub):
        fx, fy, cx, cy = config.intrinsics()
        info = CameraInfo(width=config.width, height=config.height, distortion_model='plumb_bob',
                          d=[0.0] * 5, k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
                          r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                          p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0])
        info.header.frame_id = f'{config.name}_optical_frame'

        def publish(stamp: float, rgb: np.ndarray) -> None:
            if image_pub.get_subscription_count() == 0:
                return
            image = Image(height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8',
                          step=3 * rgb.shape[1], data=rgb.tobytes())
            image.header.stamp, image.header.frame_id = time_msg(stamp), info.header.frame_id
            info.header.stamp = image.header.stamp
            image_pub.publish(image)
            info_pub.publish(info)
        return publish

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
            self.joint_pub.publish(joint_state_msg(self.limits.names, time_msg(stamp), position, velocity))
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
        bus = DiagnosticStatus(name='so101: servo bus', hardware_id=self.bus.config.port)
        bus.level = {ArmMode.ACTIVE: DiagnosticStatus.OK, ArmMode.TORQUE_OFF: DiagnosticStatus.OK,
                     ArmMode.EMERGENCY_STOP: DiagnosticStatus.WARN}.get(c.mode, DiagnosticStatus.ERROR)
        bus.message = c.mode.value + (f': {c.error}' if c.error else '')
        values = [('mode', c.mode.value), ('error', c.error),
                  ('loop_rate_hz', f'{c.loop_rate:.1f}'),
                  ('transactions', counters.transactions), ('retries', counters.retries),
                  ('failed_transactions', counters.failures), ('last_bus_error', counters.last_error),
                  ('watchdog_trips', c.watchdog_trips), ('refused_commands', self.commands.refused),
                  ('calibration_written_to_servos', counters.calibration_written)]
        for key, array in c.health.items():
            values += [(f'{j}.{key}', f'{v:g}') for j, v in zip(self.limits.names, array)]
        bus.values = [KeyValue(key=k, value=str(v)) for k, v in values]
        statuses = [bus]
        for camera in self.cameras:
            status = DiagnosticStatus(name=f'so101: camera {camera.config.name}',
                                      hardware_id=camera.config.device)
            status.level = DiagnosticStatus.OK if camera.frames else DiagnosticStatus.WARN
            status.message = f'{camera.frames} frames, {camera.failures} failed reads'
            statuses.append(status)
        array = DiagnosticArray(status=statuses)
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)

    @property
    def alive(self) -> bool:
        return self.controller.alive

    def destroy_node(self) -> None:
        for camera in self.cameras:
            camera.close()
        self.controller.stop()          # torque off
        self.commands.destroy()
        super().destroy_node()


SETUP_ERRORS = (BusError, CalibrationError, CameraError, ConnectionError, RobotDescriptionError,
                ValueError)


def main(args=None) -> int:
    rclpy.init(args=args)
    try:
        node = So101Node()
    except SETUP_ERRORS as e:
        rclpy.logging.get_logger('so101').fatal(str(e))
        rclpy.try_shutdown()
        return 1
    except KeyboardInterrupt:
        rclpy.try_shutdown()
        return 0
    spin_node(node, MultiThreadedExecutor(num_threads=3), alive=lambda: node.alive)
    return 1 if node.controller.crashed else 0


if __name__ == '__main__':
    raise SystemExit(main())
