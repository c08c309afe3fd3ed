"""``teleop_gamepad``: a gamepad jogs the end effector, through LeRobot's own gamepad controller.

The gamepad is read by ``lerobot.teleoperators.gamepad.gamepad_utils.GamepadController``
(pygame: LeRobot's ``gamepad`` extra, an optional dependency; without it the
node says how to install it and exits): the left stick moves the end effector
in x and y, the right stick in z, at up to ``speed`` m/s; LeRobot's gripper
buttons open and close it. The target is streamed by ``JogStreamer`` as the
keyboard's is. LeRobot's episode buttons (success, failure, rerecord) are
logged, not acted on: recording keys stay on the keyboard (``teleop_keyboard``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
import threading
import time

import numpy as np
from rclpy.node import Node

from robosandbox_control.parameters import declare, parameter
from robosandbox_control.spinning import run_node
from robosandbox_description.robot import load_robot, RobotDescriptionError
from robosandbox_teleop.jog import Jog
from robosandbox_teleop.jog_streamer import JogStreamer


class GamepadError(RuntimeError):
    """No gamepad support installed, or no gamepad connected."""


@dataclass
class GamepadParameters:
    """Parameters of ``teleop_gamepad``."""

    robot: str = parameter('so101', 'Robot description: joints, limits, home, the URDF for jogging.',
                           read_only=True)
    rate: float = parameter(50.0, 'Gamepad reads and targets streamed per second (wall clock).', read_only=True,
                            range=(1.0, 500.0))
    speed: float = parameter(0.05, 'End-effector speed at full stick, m/s.', range=(0.001, 0.5))
    deadzone: float = parameter(0.1, 'Stick deflection below which it reads 0.', read_only=True,
                                range=(0.0, 0.9))
    approach_velocity: float = parameter(0.3, 'Speed, rad/s per joint, of the slow approach at the start.',
                                         range=(0.01, 3.0))


def gamepad_controller(deadzone: float):
    """LeRobot's GamepadController, started; GamepadError saying what is missing."""
    try:
        from lerobot.teleoperators.gamepad.gamepad_utils import GamepadController
        controller = GamepadController(deadzone=deadzone)        # unit steps: deltas are stick deflections
    except ImportError as e:
        raise GamepadError(f'the gamepad needs pygame, LeRobot\'s gamepad extra: {e}') from None
    controller.start()
    if not controller.running:
        raise GamepadError('no gamepad detected: connect one (pygame sees none) and start again')
    return controller


class GamepadNode(Node):

    def __init__(self, controller=None, **kwargs):
        super().__init__('teleop_gamepad', **kwargs)
        self.running = False
        self._thread: threading.Thread | None = None
        p = self.p = declare(self, GamepadParameters)
        self.jog = Jog(load_robot(p.robot))
        self.controller = controller or gamepad_controller(p.deadzone)
        self.streamer = JogStreamer(self, self.jog, p.rate, p.approach_velocity)
        self.running = True
        self.streamer.start()
        self._thread = threading.Thread(target=self._read, name='gamepad', daemon=True)
        self._thread.start()
        self.get_logger().info(f'gamepad: sticks move the end effector at up to {p.speed:g} m/s')

    def _read(self) -> None:
        period = 1.0 / self.p.rate
        log = self.get_logger()
        while self.running:
            self.controller.update()
            deflection = np.array(self.controller.get_deltas(), dtype=float)
            if np.any(deflection):
                line = self.streamer.apply(partial(self.jog.move, delta=deflection * self.p.speed * period))
                if 'not moved' in line:
                    log.warning(line, throttle_duration_sec=1.0)
            gripper = self.controller.gripper_command()
            if gripper != 'stay':
                self.streamer.apply(partial(self.jog.gripper, open_=gripper == 'open'))
            status = self.controller.get_episode_end_status()
            if status is not None:
                log.info(f'gamepad episode button ({status}): recording keys are teleop_keyboard\'s')
            time.sleep(period)

    def destroy_node(self) -> None:
        self.running = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.streamer.stop()
        self.controller.stop()
        super().destroy_node()


def main(args=None) -> int:
    return run_node('teleop_gamepad', GamepadNode, (GamepadError, RobotDescriptionError, ValueError), args=args)


if __name__ == '__main__':
    raise SystemExit(main())
