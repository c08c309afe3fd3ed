"""An SO-101 leader arm in ROS units, over LeRobot's own leader teleoperator.

``So101Leader`` reads a leader through ``lerobot.teleoperators.so_leader.SOLeader``
(LeRobot's Feetech bus, its motor table, torque off): a leader calibrated with
``lerobot-calibrate --teleop.type=so101_leader --teleop.id=<id>`` works
unchanged, and its calibration file is found where LeRobot writes it.
Positions come out in radians, the gripper as the follower's joint angle
(``robosandbox_control.units``): LeRobot's leader degrees are the follower's
degrees, so the same map serves both arms.

A read that fails (after LeRobot's own retries) raises ``LeaderError`` and
drops the connection: a leader that stops answering is a leader lost, and
``connect`` may be called again to find it back.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import logging
from pathlib import Path

import numpy as np

from robosandbox_control.units import joint_units, LEROBOT_SO101
from robosandbox_hw.so101_bus import BUS_EXCEPTIONS, CalibrationError, JOINTS, load_calibration

logger = logging.getLogger(__name__)

LEADER_CALIBRATE = 'lerobot-calibrate --teleop.type=so101_leader --teleop.port=<port> --teleop.id={id}'


class LeaderError(RuntimeError):
    """The leader does not answer (or was never found)."""


def default_leader_calibration_file(teleop_id: str) -> Path:
    """Where ``lerobot-calibrate --teleop.type=so101_leader --teleop.id=<teleop_id>`` writes."""
    from lerobot.teleoperators.so_leader import SOLeader
    from lerobot.utils.constants import HF_LEROBOT_CALIBRATION, TELEOPERATORS
    return Path(HF_LEROBOT_CALIBRATION) / TELEOPERATORS / SOLeader.name / f'{teleop_id}.json'


@dataclass
class So101LeaderConfig:
    port: str
    calibration_file: Path
    gripper_range: tuple[float, float]     # the follower's gripper angle, rad, at 0 (closed) and 100
    gripper_joint: str = 'gripper'
    read_retries: int = 2                  # LeRobot's num_read_retries


class So101Leader:
    """A read-only SO-101 leader: connect, read radians, close."""

    joints = JOINTS                        # SOLeader's motor names, in its order

    def __init__(self, config: So101LeaderConfig):
        self.config = config
        # Checked here, with the command that writes it, before any port is opened.
        load_calibration(config.calibration_file, self.joints, LEADER_CALIBRATE)
        self.units = joint_units(LEROBOT_SO101, self.joints, config.gripper_joint, config.gripper_range)
        self._teleop = None

    @property
    def connected(self) -> bool:
        return self._teleop is not None

    def connect(self) -> None:
        """Open the port and check the servos; torque stays off (LeRobot's ``configure``).

        A leader whose servos hold another calibration than the file gets the
        file's, as ``SOLeader`` does when its user keeps the file. Raises
        ``LeaderError`` when the port or a servo is missing."""
        from lerobot.teleoperators.so_leader import SOLeader, SOLeaderTeleopConfig
        path = Path(self.config.calibration_file)
        teleop = SOLeader(SOLeaderTeleopConfig(port=self.config.port, id=path.stem,
                                               calibration_dir=path.parent,
                                               num_read_retries=self.config.read_retries))
        try:
            teleop.connect(calibrate=False)      # calibrating asks questions on stdin: not in a node
            if not teleop.is_calibrated:
                logger.warning('leader servo calibration differs from %s; writing the file to the servos',
                               path)
                teleop.bus.write_calibration(teleop.calibration)
        except (ConnectionError, *BUS_EXCEPTIONS) as e:
            self._drop(teleop)
            raise LeaderError(f'no SO-101 leader on {self.config.port}: {str(e).strip()}') from None
        self._teleop = teleop

    def read(self) -> np.ndarray:
        """Joint positions, rad, in ``joints`` order."""
        if self._teleop is None:
            raise LeaderError('the leader is not connected')
        try:
            action = self._teleop.get_action()
        except (ConnectionError, *BUS_EXCEPTIONS) as e:
            self.close()
            raise LeaderError(f'the leader stopped answering: {str(e).strip()}') from None
        return self.units.to_ros(np.array([action[f'{j}.pos'] for j in self.joints]))

    def close(self) -> None:
        """Close the port (the leader's torque is off already); safe to call twice."""
        teleop, self._teleop = self._teleop, None
        if teleop is not None:
            self._drop(teleop)

    @staticmethod
    def _drop(teleop) -> None:
        if teleop.bus.is_connected:
            with contextlib.suppress(Exception):    # the port may be gone: closing is all that is left
                teleop.bus.disconnect(disable_torque=False)


__all__ = ['CalibrationError', 'default_leader_calibration_file', 'LeaderError', 'So101Leader',
           'So101LeaderConfig']
