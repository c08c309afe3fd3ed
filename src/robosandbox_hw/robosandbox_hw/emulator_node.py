"""``so101_emulator``: an emulated SO-101 servo bus for trying the hardware node with no arm.

Serves :class:`~robosandbox_hw.emulator.EmulatedBus` on a pseudo-terminal,
linked at ``port`` so ``so101_node`` can open it as it opens a USB adapter,
and writes a LeRobot calibration file for the emulated arm at
``calibration_file`` (the step ``lerobot-calibrate`` does on a real one).

Given a ``hand`` path, it is a leader arm: torque off, a scripted hand turns
its joints along the path, and ``so101_leader`` reads it as it reads a real
leader.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
import time

from rclpy.node import Node

from robosandbox_control.parameters import declare, parameter
from robosandbox_control.spinning import run_node
from robosandbox_control.units import joint_units, LEROBOT_SO101
from robosandbox_description.robot import load_robot, RobotDescriptionError
from robosandbox_hw.emulator import calibration_for, EmulatedBus, HandPath, HandPathError, ScriptedHand

@dataclass
class EmulatorParameters:
    """Parameters of ``so101_emulator``, all fixed once the bus is served."""

    port: str = parameter('/tmp/robosandbox-so101', 'Path of the symlink to the emulated bus (give it to '
                                                    'so101_node).', read_only=True)
    calibration_file: str = parameter('/tmp/robosandbox-so101.json', "Where to write the emulated arm's "
                                                                     'LeRobot calibration.', read_only=True)
    baudrate: int = parameter(1_000_000, 'Emulated bus baud rate: sets the wire time of every packet.',
                              read_only=True, range=(9600, 1_000_000))
    robot: str = parameter('so101', 'Robot description whose joint limits the emulated calibration spans.',
                           read_only=True)
    drop_rate: float = parameter(0.0, "Probability that a servo's status packet is lost.", read_only=True,
                                 range=(0.0, 1.0))
    corrupt_rate: float = parameter(0.0, "Probability that a servo's status packet has a bad checksum.",
                                    read_only=True, range=(0.0, 1.0))
    seed: int = parameter(0, 'Seed of the fault draws.', read_only=True, range=(0, 2**31 - 1))
    hand: str = parameter('', "A hand path (YAML: joints, points of t and positions in rad): the arm is "
                              "a leader, moved along it with torque off; '' = no hand.", read_only=True)
    hand_loop: bool = parameter(True, 'Run the hand path again from its start when it ends (else hold '
                                      'its last point).', read_only=True)


class EmulatorNode(Node):

    def __init__(self):
        super().__init__('so101_emulator')
        p = declare(self, EmulatorParameters)
        robot = load_robot(p.robot)
        calibration = calibration_for(robot.joints, robot.lower, robot.upper)
        path = Path(p.calibration_file).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(calibration, indent=4))
        self.bus = EmulatedBus(baudrate=p.baudrate, link=p.port, seed=p.seed)
        self.bus.store_calibration(calibration)      # as if calibrated with that file
        for servo in self.bus.servos.values():
            servo.faults.drop_rate, servo.faults.corrupt_rate = p.drop_rate, p.corrupt_rate
        self.hand = None
        if p.hand:
            hand_path = HandPath.load(p.hand)      # before the bus is served: a bad file serves nothing
            units = joint_units(LEROBOT_SO101, hand_path.joints, robot.gripper_joint, robot.gripper_range)
            self.hand = ScriptedHand(self.bus, hand_path, calibration, units.to_policy, loop=p.hand_loop)
        self.bus.start()
        if self.hand:
            self.hand.start()
        self.get_logger().info(f'emulated SO-101 bus on {self.bus.port} -> {self.bus.pty}, '
                               f'calibration {path}' + (f', moved by the hand path {p.hand}' if p.hand else ''))

    def destroy_node(self) -> None:
        # A launch stops every node at once: keep answering a moment so the
        # hardware node's torque-off on shutdown reaches the servos, as on an arm.
        time.sleep(1.0)
        if self.hand:
            self.hand.stop()
        self.bus.stop()
        super().destroy_node()


def main(args=None) -> int:
    return run_node('so101_emulator', EmulatorNode, (HandPathError, RobotDescriptionError, OSError), args=args)


if __name__ == '__main__':
    raise SystemExit(main())
