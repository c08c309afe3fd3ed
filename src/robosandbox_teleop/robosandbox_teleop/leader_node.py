"""``so101_leader``: an SO-101 leader arm driving a follower (sim or hardware) through the arm contract.

rclpy glue around ``So101Leader`` (LeRobot's leader teleoperator, read only,
torque off) and ``TeleopStream``. A thread reads the leader ``rate`` times a
second (wall clock: the bus is a wall-clock device), publishes what it read on
``leader/joint_states`` and streams the target on ``joint_trajectory``, one
point per read, as any streaming client of the follower; ``teleop/action`` is
that target stamped with its read, for recordings. The follower's own
``joint_states`` says where the approach starts.

A leader that stops answering stops the stream: the follower's watchdog then
holds it. The node keeps looking for the leader and, once it answers again,
leads the follower to it slowly as at the start.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import threading
import time

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import JointState

from robosandbox_control.arm_interface import joint_state_msg
from robosandbox_control.parameters import declare, parameter
from robosandbox_control.ros_logging import log_to_ros
from robosandbox_control.spinning import run_node
from robosandbox_description.robot import load_robot, RobotDescriptionError
from robosandbox_hw.leader import (
    CalibrationError, default_leader_calibration_file, LeaderError, So101Leader, So101LeaderConfig)
from robosandbox_teleop.stream import TeleopStream, TeleopStreamConfig
from robosandbox_teleop.targets import Follower

RECONNECT_PERIOD = 1.0     # s between looks for a lost leader


@dataclass
class LeaderParameters:
    """Parameters of ``so101_leader``; the leader and its rate are fixed once it runs."""

    port: str = parameter('/dev/ttyACM1', "Serial port of the leader arm's servo bus adapter.", read_only=True)
    teleop_id: str = parameter('so101_leader', 'LeRobot teleoperator id: the calibration is <LeRobot '
                                               'calibration dir>/teleoperators/so_leader/<teleop_id>.json.',
                               read_only=True)
    calibration_file: str = parameter('', 'LeRobot leader calibration JSON overriding the one found from '
                                          'teleop_id.', read_only=True)
    robot: str = parameter('so101', "The follower's robot description (joint limits, gripper range).",
                           read_only=True)
    rate: float = parameter(100.0, 'Leader reads, and targets streamed, per second (wall clock).',
                            read_only=True, range=(1.0, 1000.0))
    approach_velocity: float = parameter(0.3, 'Speed, rad/s per joint, at which the follower is led to the '
                                              'leader at the start and after the leader was lost.',
                                         range=(0.01, 3.0))
    approach_tolerance: float = parameter(0.05, 'The follower has reached the leader when every joint is '
                                                'this close, rad; the targets are the leader from then on.',
                                          range=(0.001, 1.0))
    connect_timeout: float = parameter(10.0, 'Seconds to wait at start for the port and the servos.',
                                       read_only=True, range=(0.0, 3600.0))


class LeaderNode(Node):

    def __init__(self, **kwargs):
        super().__init__('so101_leader', **kwargs)
        log_to_ros('robosandbox_hw', self.get_logger())
        self.leader: So101Leader | None = None     # what destroy_node releases, set before anything can fail
        self._running = False
        self.failed = False                        # the streaming thread died
        self._thread: threading.Thread | None = None
        p = self.p = declare(self, LeaderParameters)
        robot = load_robot(p.robot)
        self.joints = So101Leader.joints
        order = [robot.joints.index(j) for j in self.joints]
        self.lower, self.upper = robot.lower[order], robot.upper[order]
        self.period = 1.0 / p.rate
        self.stream = TeleopStream(TeleopStreamConfig(p.approach_velocity, p.approach_tolerance))
        self._beyond = ''                          # the joints last found beyond the follower's limits

        self.state_pub = self.create_publisher(JointState, 'leader/joint_states', 10)
        self.follower = Follower(self, self.joints)     # targets stamped with the read they come from

        deadline = time.monotonic() + p.connect_timeout
        while not os.path.exists(p.port) and time.monotonic() < deadline:
            time.sleep(0.2)        # a USB adapter being plugged in, an emulator starting
        calibration = (os.path.expanduser(p.calibration_file) if p.calibration_file
                       else default_leader_calibration_file(p.teleop_id))
        self.leader = So101Leader(So101LeaderConfig(p.port, calibration, robot.gripper_range,
                                                    robot.gripper_joint))
        while True:
            try:
                self.leader.connect()
                break
            except LeaderError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
        self._running = True
        self._thread = threading.Thread(target=self._loop, name='leader', daemon=True)
        self._thread.start()
        self.get_logger().info(f'leader on {p.port} ({calibration}), streaming to '
                               f'{self.follower.command_pub.topic_name} at {p.rate:g} Hz')

    def _loop(self) -> None:
        try:
            self._stream_leader()
        except Exception as e:  # noqa: BLE001 - report, then end the node (a bringup stops with it)
            self.get_logger().fatal(f'the leader loop failed: {e!r}; nothing is streamed, the follower holds')
            self.failed = True
        finally:
            self._running = False

    def _stream_leader(self) -> None:
        log = self.get_logger()
        next_tick = time.monotonic()
        last = None
        retry_at = 0.0
        while self._running:
            next_tick += self.period
            if not self.leader.connected and time.monotonic() >= retry_at:
                retry_at = time.monotonic() + RECONNECT_PERIOD
                try:
                    self.leader.connect()
                    log.info('leader found again: leading the follower to it slowly')
                except LeaderError:
                    pass
            if self.leader.connected:
                try:
                    self._tick(self.leader.read(), last)
                except LeaderError as e:
                    log.error(f'{e}; stream stopped, the follower holds')
                    self.stream.reset()
                last = time.monotonic()
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()    # late (or reconnecting): no burst to catch up

    def _tick(self, reading: np.ndarray, last: float | None) -> None:
        now = self.get_clock().now().to_msg()
        self.state_pub.publish(joint_state_msg(self.joints, now, reading, np.zeros(len(reading))))
        dt = self.period if last is None else time.monotonic() - last
        target = self.stream.target(reading, self.follower.positions, dt)
        if target is None:
            return
        beyond = ', '.join(j for j, q, lo, hi in zip(self.joints, target, self.lower, self.upper)
                           if not lo <= q <= hi)
        if beyond != self._beyond:
            self._beyond = beyond
            if beyond:
                self.get_logger().warning(f'the leader is beyond the follower\'s limits on {beyond}: '
                                          'nothing sent, the follower holds until the leader is back inside')
        if beyond:
            return
        self.follower.command(target, now)

    def destroy_node(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self.leader is not None:
            self.leader.close()
        super().destroy_node()


SETUP_ERRORS = (CalibrationError, LeaderError, RobotDescriptionError, ValueError)


def main(args=None) -> int:
    return run_node('so101_leader', LeaderNode, SETUP_ERRORS, alive=lambda node: node._running,
                    failed=lambda node: node.failed, args=args)


if __name__ == '__main__':
    raise SystemExit(main())
