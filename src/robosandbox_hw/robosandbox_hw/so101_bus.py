"""The SO-101 follower's servo bus in ROS units, over LeRobot's Feetech driver.

``So101Bus`` is a narrow interface (connect, read positions, write goals,
torque, health) around ``lerobot.motors.feetech.FeetechMotorsBus``, set up as
LeRobot's own ``SOFollower`` sets it up: the same motor table, the same
calibration file (written by ``lerobot-calibrate``), the same position gains.
Positions cross it in radians with the gripper in the sim's joint angle, via
``robosandbox_control.units`` (LeRobot degrees and 0-100 gripper <-> rad).

Every failed transaction is retried ``retries`` times; ``BusError`` reports a
transaction that still failed, and the counters feed ``/diagnostics``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import logging
import os
from pathlib import Path
import termios

import numpy as np

from robosandbox_control.units import joint_units, LEROBOT_SO101

logger = logging.getLogger(__name__)

JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')
# LeRobot's SO-101 follower: servo ids 1-6 in joint order, STS3215 everywhere.
MOTOR_IDS = (1, 2, 3, 4, 5, 6)
MODEL = 'sts3215'
# Status register bits that mean the servo protected itself (voltage, sensor,
# temperature, current, overload): the arm can no longer be trusted to hold.
FATAL_STATUS_BITS = {0x01: 'voltage', 0x02: 'sensor', 0x04: 'temperature', 0x08: 'current',
                     0x20: 'overload'}


# What a transaction can raise: LeRobot's ConnectionError/RuntimeError, from a
# vanished port pyserial's SerialException (an OSError) or termios.error, and from
# feetech-servo-sdk an IndexError: its ping indexes the parameters of a status packet
# whose length it did not check (a short or stray answer on a busy bus).
BUS_EXCEPTIONS = (OSError, RuntimeError, termios.error, IndexError)


class BusError(RuntimeError):
    """A bus transaction failed after its retries."""


class CalibrationError(ValueError):
    """The calibration file is missing or does not fit the arm."""


def default_calibration_file(robot_id: str) -> Path:
    """Where ``lerobot-calibrate --robot.type=so101_follower --robot.id=<robot_id>`` writes."""
    from lerobot.utils.constants import HF_LEROBOT_CALIBRATION, ROBOTS
    return Path(HF_LEROBOT_CALIBRATION) / ROBOTS / 'so_follower' / f'{robot_id}.json'


FOLLOWER_CALIBRATE = 'lerobot-calibrate --robot.type=so101_follower --robot.port=<port> --robot.id={id}'


def load_calibration(path: Path, joints=JOINTS, calibrate: str = FOLLOWER_CALIBRATE) -> dict:
    """A LeRobot calibration file, read as LeRobot reads it (draccus, JSON).
    ``calibrate`` is the LeRobot command that writes it (``{id}``: the file's stem)."""
    import draccus
    from lerobot.motors import MotorCalibration
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(
            f'no calibration file {path}; calibrate the arm with LeRobot first: '
            f'{calibrate.format(id=path.stem)}')
    try:
        with open(path) as f, draccus.config_type('json'):
            calibration = draccus.load(dict[str, MotorCalibration], f)
    except Exception as e:      # draccus raises its own parse errors
        raise CalibrationError(f'{path}: not a LeRobot calibration file ({e})') from None
    missing = [j for j in joints if j not in calibration]
    if missing:
        raise CalibrationError(f'{path}: no calibration for {missing}')
    for name in joints:
        c = calibration[name]
        if c.range_max <= c.range_min:
            raise CalibrationError(f'{path}: {name} has range_min {c.range_min} >= range_max {c.range_max}')
    return calibration


@dataclass
class So101BusConfig:
    port: str
    calibration_file: Path
    gripper_range: tuple[float, float]     # rad at LeRobot's 0 (closed) and 100 (open)
    joints: tuple[str, ...] = JOINTS
    motor_ids: tuple[int, ...] = MOTOR_IDS
    gripper_joint: str = 'gripper'
    baudrate: int = 1_000_000
    retries: int = 2
    # SOFollower's position loop gains (lower P than the factory's 32 avoids shakiness).
    p_coefficient: int = 16
    i_coefficient: int = 0
    d_coefficient: int = 32


@dataclass
class BusCounters:
    transactions: int = 0
    retries: int = 0                       # failed attempts that were retried
    failures: int = 0                      # transactions that failed after retries
    last_error: str = ''
    calibration_written: bool = False


class So101Bus:
    """Six STS3215 servos in ROS units."""

    def __init__(self, config: So101BusConfig):
        from lerobot.motors import Motor, MotorNormMode
        from lerobot.motors.feetech import FeetechMotorsBus
        self.config = config
        self.calibration = load_calibration(config.calibration_file, config.joints)
        motors = {
            name: Motor(mid, MODEL, MotorNormMode.RANGE_0_100 if name == config.gripper_joint
                        else MotorNormMode.DEGREES)
            for name, mid in zip(config.joints, config.motor_ids)}
        self.driver = FeetechMotorsBus(config.port, motors, self.calibration)
        self.driver.port_handler.baudrate = config.baudrate     # used when the port opens
        self.units = joint_units(LEROBOT_SO101, config.joints, config.gripper_joint,
                                 config.gripper_range)
        self.counters = BusCounters()

    # --- lifecycle -------------------------------------------------------------------

    def connect(self) -> None:
        """Open the port, check the servos, apply the calibration and gains.

        Raises ``ConnectionError`` when the port or a servo is missing. A servo
        whose stored calibration differs from the file gets the file's (torque
        off while writing), as LeRobot does when told to use its file.
        """
        try:
            self.driver.connect()
        except RuntimeError as e:          # LeRobot's motor check: missing ids, wrong models
            raise ConnectionError(str(e)) from None
        # Torque stays off when done (LeRobot's torque_disabled() would turn it back
        # on with whatever goal the servos hold): only enable() powers the arm.
        self.set_torque(False)
        if not self.driver.is_calibrated:
            logger.warning('servo calibration differs from %s; writing the file to the servos',
                           self.config.calibration_file)
            self.driver.write_calibration(self.calibration)
            self.counters.calibration_written = True
        self.driver.configure_motors()
        for name in self.config.joints:
            self.driver.write('Operating_Mode', name, 0)     # position servo mode
            self.driver.write('P_Coefficient', name, self.config.p_coefficient)
            self.driver.write('I_Coefficient', name, self.config.i_coefficient)
            self.driver.write('D_Coefficient', name, self.config.d_coefficient)
            if name == self.config.gripper_joint:
                # As SOFollower: half torque and current so a blocked jaw cannot burn out.
                self.driver.write('Max_Torque_Limit', name, 500)
                self.driver.write('Protection_Current', name, 250)
                self.driver.write('Overload_Torque', name, 25)

    def close(self, torque_off: bool = True) -> None:
        """Torque off (with retries) and close the port; safe to call twice."""
        if not self.driver.is_connected:
            return
        try:
            if torque_off:
                self.set_torque(False)
        except BusError as e:      # a servo or the port may be gone: still close it
            logger.error('torque off on close failed: %s', e)
        finally:
            self.driver.disconnect(disable_torque=False)

    # --- transactions ------------------------------------------------------------------

    def _retried(self, what: str, call):
        self.counters.transactions += 1
        for attempt in range(1 + self.config.retries):
            try:
                # A status packet that arrived after its transaction timed out would be
                # read as the answer to this one (same servo id, other register): a
                # stale position taken for Status bits looks like a protection fault.
                self.driver.port_handler.ser.reset_input_buffer()
                return call()
            except BUS_EXCEPTIONS as e:
                error = e
                # An exception inside the SDK leaves its port marked busy: every
                # later transaction would fail with "Port is in use".
                self.driver.port_handler.is_using = False
                if attempt < self.config.retries:
                    self.counters.retries += 1
        self.counters.failures += 1
        self.counters.last_error = f'{what}: {str(error).strip()}'
        raise BusError(self.counters.last_error)

    def read_positions(self) -> np.ndarray:
        """Joint positions, rad, in joint order."""
        values = self._retried('read positions', lambda: self.driver.sync_read('Present_Position'))
        return self.units.to_ros(np.array([values[j] for j in self.config.joints]))

    def write_goals(self, positions: np.ndarray) -> None:
        """Goal positions, rad, in joint order (a broadcast: no status packets)."""
        values = self.units.to_policy(np.asarray(positions, dtype=float))
        goals = {j: float(v) for j, v in zip(self.config.joints, values)}
        self._retried('write goals', lambda: self.driver.sync_write('Goal_Position', goals))

    def set_torque(self, enabled: bool) -> None:
        """Torque on or off on every servo, one by one.

        Off is best effort: a servo that does not answer does not keep the
        others powered. On is all or nothing: if one servo fails, all go off.
        """
        failed = []
        for name in self.config.joints:
            call = self.driver.enable_torque if enabled else self.driver.disable_torque
            try:
                self._retried(f'torque {"on" if enabled else "off"} {name}',
                              lambda call=call, name=name: call(name))
            except BusError as e:
                failed.append(str(e))
                if enabled:
                    break
        if failed and enabled:
            with contextlib.suppress(BusError):
                self.set_torque(False)
        if failed:
            raise BusError('; '.join(failed))

    def read_health(self) -> dict[str, np.ndarray]:
        """Temperature (C), voltage (V), load (signed, per mille) and status bits per servo."""
        def read(register):
            values = self._retried(f'read {register}',
                                   lambda: self.driver.sync_read(register, normalize=False))
            return np.array([values[j] for j in self.config.joints])
        return {'temperature': read('Present_Temperature').astype(float),
                'voltage': read('Present_Voltage') / 10.0,
                'load': read('Present_Load').astype(float),
                'status': read('Status').astype(int)}


def fatal_status(joints, status: np.ndarray) -> str:
    """A description of the servos reporting a protection fault, or ''."""
    faults = []
    for name, bits in zip(joints, status):
        what = [label for bit, label in FATAL_STATUS_BITS.items() if int(bits) & bit]
        if what:
            faults.append(f'{name}: {"/".join(what)}')
    return ', '.join(faults)


def calibration_path(robot_id: str, explicit: str = '') -> Path:
    """The calibration file: ``explicit`` when given, else LeRobot's location for ``robot_id``."""
    return Path(os.path.expanduser(explicit)) if explicit else default_calibration_file(robot_id)
