"""An emulated Feetech STS servo bus on a pseudo-terminal, free of ROS.

The servo driver (LeRobot's ``FeetechMotorsBus`` over feetech-servo-sdk and
pyserial) opens ``EmulatedBus.port`` exactly as it opens a USB adapter; this
side answers as the servos would:

* protocol 0 packets ``FF FF id len instruction params checksum``, checksum
  ``~(id + len + instruction + params) & 0xFF``; a packet with a bad checksum
  is ignored, as a servo ignores it;
* PING, READ, WRITE, SYNC READ and SYNC WRITE, broadcast ping;
* a 256-byte register file per servo laid out as LeRobot's STS3215 control
  table, little-endian, sign-magnitude where the servo uses it;
* EEPROM (addresses below 40) only writable while ``Lock`` is 0, which is how
  LeRobot writes a calibration (it clears ``Lock`` with torque off);
* ``Present_Position = actual - Homing_Offset``, goals clamped to the angle
  limits, a first-order motor that tracks its goal at a bounded speed while
  torque is on;
* the wire: each packet occupies the bus for 10 bits per byte at the
  emulated baud rate plus the servo's return delay, so loop rates measured
  against the emulator respect the real bus's limit.

Faults, per servo (:class:`ServoFaults`): dropped or corrupt status packets,
delayed answers, a servo that stops answering, and overload (torque drops and
the error bit is set, as the STS3215's protection does).

A leader arm is the same bus with torque off, moved by a hand:
:class:`ScriptedHand` turns the servos' shafts along a :class:`HandPath` (joint
positions in radians over time, from a YAML file), as a person would.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
import importlib.util
import math
import os
from pathlib import Path
import random
import select
import threading
import time
import tty
from collections.abc import Callable

import numpy as np
from scservo_sdk import BROADCAST_ID, INST_PING, INST_READ, INST_SYNC_READ, INST_SYNC_WRITE, INST_WRITE


def _lerobot_feetech_tables():
    """LeRobot's Feetech tables (plain dicts), read without importing ``lerobot.motors``,
    whose package import pulls in torch: 5.5 s here, to learn a dozen addresses."""
    lerobot = importlib.util.find_spec('lerobot')
    path = Path(lerobot.submodule_search_locations[0]) / 'motors' / 'feetech' / 'tables.py'
    spec = importlib.util.spec_from_file_location('lerobot_feetech_tables', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The protocol's instruction codes (Feetech's SDK) and the STS3215's register
# map, model number and resolution (LeRobot's tables): the emulator answers
# exactly what LeRobot's driver will ask of a real servo.
_TABLES = _lerobot_feetech_tables()
PING, READ, WRITE = INST_PING, INST_READ, INST_WRITE
SYNC_READ, SYNC_WRITE = INST_SYNC_READ, INST_SYNC_WRITE
BROADCAST = BROADCAST_ID
_REGISTERS = _TABLES.MODEL_CONTROL_TABLE['sts3215']
LOCK, TORQUE_ENABLE = _REGISTERS['Lock'][0], _REGISTERS['Torque_Enable'][0]
GOAL_POSITION, PRESENT_POSITION = _REGISTERS['Goal_Position'][0], _REGISTERS['Present_Position'][0]
HOMING_OFFSET = _REGISTERS['Homing_Offset'][0]
MIN_LIMIT, MAX_LIMIT = _REGISTERS['Min_Position_Limit'][0], _REGISTERS['Max_Position_Limit'][0]
RETURN_DELAY = _REGISTERS['Return_Delay_Time'][0]
STATUS = _REGISTERS['Status'][0]
EEPROM_END = TORQUE_ENABLE       # registers below Torque_Enable persist and are lock-protected
OVERLOAD_BIT = 0x20              # of Status; LeRobot names no status bits
# Firmware and model registers, and the present-state block, are written by the servo only.
READ_ONLY = (set(range(0, _REGISTERS['ID'][0]))
             | set(range(PRESENT_POSITION, _REGISTERS['Goal_Position_2'][0])))
STS3215_MODEL = _TABLES.MODEL_NUMBER_TABLE['sts3215']
RESOLUTION = _TABLES.MODEL_RESOLUTION['sts3215']


def checksum(body) -> int:
    return ~sum(body) & 0xFF


def packet(servo_id: int, code: int, params: bytes = b'') -> bytes:
    """A packet: ``code`` is the instruction (to servos) or the error byte (from them)."""
    body = bytes([servo_id, len(params) + 2, code]) + params
    return b'\xff\xff' + body + bytes([checksum(body)])


def _sign_magnitude(value: int, bit: int) -> int:
    return -(value & ((1 << bit) - 1)) if value & (1 << bit) else value


def _encode_sign_magnitude(value: int, bit: int) -> int:
    return (1 << bit) | -value if value < 0 else value


@dataclass
class ServoFaults:
    drop_rate: float = 0.0       # probability a status packet is not sent
    corrupt_rate: float = 0.0    # probability a status packet has a wrong checksum
    # Probability a status packet comes without its parameters (length and checksum
    # consistent: what a late answer to an earlier request looks like to the next one).
    short_rate: float = 0.0
    delay: float = 0.0           # s added before each answer
    dead: bool = False           # never answers, ignores writes
    overload: bool = False       # torque released, overload bit set in status and Status


class EmulatedServo:
    """One STS3215: registers and a motor."""

    MAX_SPEED = 3400.0           # steps/s at no load (about 0.19 s per 60 degrees)
    GAIN = 25.0                  # 1/s: first-order tracking of the goal

    def __init__(self, servo_id: int, position: int = 2048):
        self.regs = bytearray(256)
        self.faults = ServoFaults()
        self.actual = float(position)              # encoder steps, before the homing offset
        r = self.regs
        r[0], r[1] = 3, 10                          # firmware 3.10
        r[3:5] = STS3215_MODEL.to_bytes(2, 'little')
        r[5] = servo_id
        r[6] = 0                                    # 1 Mbps
        r[RETURN_DELAY] = 250                       # factory default: 500 us
        r[8] = 1                                    # answer every instruction
        r[MAX_LIMIT:MAX_LIMIT + 2] = (RESOLUTION - 1).to_bytes(2, 'little')
        r[13], r[14], r[15] = 70, 140, 40           # temperature and voltage limits
        r[16:18] = (1000).to_bytes(2, 'little')     # max torque
        r[21], r[22] = 32, 32                       # P, D
        r[36] = 80                                  # overload torque
        r[48:50] = (1000).to_bytes(2, 'little')     # torque limit
        r[LOCK] = 1
        r[62], r[63] = 121, 31                      # 12.1 V, 31 C
        self._set_word(GOAL_POSITION, self.present)
        self._refresh()

    @property
    def id(self) -> int:
        return self.regs[5]

    def _word(self, addr: int) -> int:
        return int.from_bytes(self.regs[addr:addr + 2], 'little')

    def _set_word(self, addr: int, value: int) -> None:
        self.regs[addr:addr + 2] = (value & 0xFFFF).to_bytes(2, 'little')

    @property
    def offset(self) -> int:
        return _sign_magnitude(self._word(HOMING_OFFSET), 11)

    @property
    def present(self) -> int:
        return int(round(self.actual - self.offset)) % RESOLUTION

    @property
    def torque(self) -> bool:
        return bool(self.regs[TORQUE_ENABLE])

    @property
    def error(self) -> int:
        return OVERLOAD_BIT if self.faults.overload else 0

    def goal_actual(self) -> float:
        goal = _sign_magnitude(self._word(GOAL_POSITION), 15)
        lo, hi = self._word(MIN_LIMIT), self._word(MAX_LIMIT)
        if hi > lo:
            goal = min(max(goal, lo), hi)
        return goal + self.offset

    def step(self, dt: float) -> None:
        if self.faults.overload:
            self.regs[TORQUE_ENABLE] = 0
        speed = 0.0
        if self.torque and dt > 0:
            # Exact first-order step (stable for any dt), then the speed limit.
            move = (self.goal_actual() - self.actual) * (1.0 - math.exp(-self.GAIN * dt))
            move = max(-self.MAX_SPEED * dt, min(self.MAX_SPEED * dt, move))
            self.actual += move
            speed = move / dt
        self._set_word(58, _encode_sign_magnitude(int(speed), 15))
        self._refresh(moving=abs(speed) > 5)

    def _refresh(self, moving: bool = False) -> None:
        self._set_word(PRESENT_POSITION, self.present)
        load = 0 if not self.torque else min(1000, int(abs(self.goal_actual() - self.actual)))
        self._set_word(60, load)
        self.regs[STATUS] = self.error
        self.regs[66] = int(moving)

    def read(self, addr: int, length: int) -> bytes:
        return bytes(self.regs[addr:addr + length])

    def write(self, addr: int, data: bytes) -> None:
        for i, value in enumerate(data):
            a = addr + i
            if a in READ_ONLY or (a < EEPROM_END and self.regs[LOCK]):
                continue        # the STS firmware drops these silently
            self.regs[a] = value
        self._refresh()


class EmulatedBus:
    """Servos answering on a pseudo-terminal; ``port`` is what a driver opens.

    ``link``: a symlink made to the pty (a stable name for launch files).
    ``on_goal``: called with (monotonic time, servo id, goal register value)
    whenever a goal position is written, and ``on_position_read`` with the
    monotonic time whenever Present_Position is read (when the answer took the
    positions, the clock :meth:`turn_by_hand` returns): to measure latencies from a
    read on one bus to a goal on another.
    """

    def __init__(self, ids=range(1, 7), baudrate: int = 1_000_000, link: str | Path | None = None,
                 positions: dict[int, int] | None = None, seed: int = 0,
                 on_goal: Callable[[float, int, int], None] | None = None,
                 on_position_read: Callable[[float], None] | None = None):
        self.servos = {i: EmulatedServo(i, (positions or {}).get(i, 2048)) for i in ids}
        self.baudrate = baudrate
        self.on_goal = on_goal
        self.on_position_read = on_position_read
        self.link = Path(link) if link else None
        self.packets = 0                 # instructions answered or applied
        self.bad_checksums = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._master, self._slave = os.openpty()
        # Raw before any client opens it: no echo, no line discipline.
        tty.setraw(self._slave)
        self.pty = os.ttyname(self._slave)
        self.port = str(self.link) if self.link else self.pty
        self._running = False
        self._thread: threading.Thread | None = None
        self._last_step = time.monotonic()
        self._answered = self._last_step     # when the latest answer took the servos' state

    # --- control -------------------------------------------------------------------

    def start(self) -> EmulatedBus:
        if self.link:
            self.link.unlink(missing_ok=True)
            self.link.symlink_to(self.pty)
        self._running = True
        self._thread = threading.Thread(target=self._serve, name='emulated-bus', daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._running = False
        if self._thread:
            self._thread.join(timeout=2.0)
        if self.link and self.link.is_symlink():
            self.link.unlink()
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> EmulatedBus:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def faults(self, servo_id: int) -> ServoFaults:
        return self.servos[servo_id].faults

    def positions(self) -> dict[int, int]:
        """Present_Position of every servo, raw steps."""
        with self._lock:
            self._advance()
            return {i: s.present for i, s in self.servos.items()}

    def torque(self) -> dict[int, bool]:
        with self._lock:
            return {i: s.torque for i, s in self.servos.items()}

    def store_calibration(self, calibration: dict) -> None:
        """Each servo's homing offset and position limits as ``lerobot-calibrate`` leaves
        them with ``calibration`` (``{joint: MotorCalibration fields}``): an arm that
        starts calibrated, so a driver given that file finds nothing to write."""
        with self._lock:
            for c in calibration.values():
                servo = self.servos[c['id']]
                servo._set_word(HOMING_OFFSET, _encode_sign_magnitude(int(c['homing_offset']), 11))
                servo._set_word(MIN_LIMIT, int(c['range_min']))
                servo._set_word(MAX_LIMIT, int(c['range_max']))

    def turn_by_hand(self, positions: dict[int, float]) -> float:
        """Turn the shafts of unpowered servos to ``positions`` (Present_Position, raw
        steps): what a hand does to a leader arm. A powered servo resists: it keeps its own.
        The monotonic time of the move: a read taken later sees it."""
        with self._lock:
            moved = self._advance()
            for i, steps in positions.items():
                servo = self.servos.get(i)
                if servo is not None and not servo.torque:
                    servo.actual = float(steps) + servo.offset
                    servo.step(0.0)
        return moved

    # --- the wire ------------------------------------------------------------------

    def _byte_time(self, n: int) -> float:
        return n * 10.0 / self.baudrate

    def _advance(self) -> float:
        now = time.monotonic()
        dt, self._last_step = now - self._last_step, now
        for servo in self.servos.values():
            servo.step(dt)
        return now

    def _serve(self) -> None:
        buffer = bytearray()
        while self._running:
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                continue
            try:
                buffer += os.read(self._master, 4096)
            except OSError:
                continue        # no client has the port open at the moment
            arrived = time.monotonic()
            while True:
                request = self._take_packet(buffer)
                if request is None:
                    break
                reply, delay = self._handle(*request)
                if reply:
                    wait = arrived + self._byte_time(request[3] + len(reply)) + delay - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    os.write(self._master, reply)
                    arrived = time.monotonic()
                    if self.on_position_read and request[1] in (READ, SYNC_READ) \
                            and request[2][:1] == bytes([PRESENT_POSITION]):
                        # Not the time the answer went out: a hand's move between
                        # the two is not in it, and the next read would carry it.
                        self.on_position_read(self._answered)

    def _take_packet(self, buffer: bytearray):
        """Remove and return the next well-formed packet (id, instruction, params, size)."""
        while True:
            start = buffer.find(b'\xff\xff')
            if start < 0:
                del buffer[:max(0, len(buffer) - 1)]
                return None
            del buffer[:start]
            if len(buffer) < 4:
                return None
            length = buffer[3]
            if len(buffer) < 4 + length:
                return None
            body, chk = bytes(buffer[2:3 + length]), buffer[3 + length]
            del buffer[:4 + length]
            if length < 2 or checksum(body) != chk:
                self.bad_checksums += 1
                continue
            return body[0], body[2], body[3:], 4 + length

    def _status(self, servo: EmulatedServo, params: bytes = b'') -> tuple[bytes, float]:
        """A servo's status packet (possibly faulty) and its extra delay."""
        f = servo.faults
        if f.dead or self._random.random() < f.drop_rate:
            return b'', 0.0
        short = params and self._random.random() < f.short_rate
        reply = bytearray(packet(servo.id, servo.error, b'' if short else params))
        if self._random.random() < f.corrupt_rate:
            reply[-1] ^= 0x5A
        return bytes(reply), f.delay + servo.regs[RETURN_DELAY] * 2e-6

    def _handle(self, servo_id: int, instruction: int, params: bytes, _size: int):
        with self._lock:
            self._answered = self._advance()     # the state an answer reports (serving thread only)
            self.packets += 1
            if instruction == SYNC_WRITE and servo_id == BROADCAST and len(params) >= 2:
                addr, length = params[0], params[1]
                for k in range(2, len(params) - length, length + 1):
                    servo = self.servos.get(params[k])
                    if servo and not servo.faults.dead:
                        self._write(servo, addr, params[k + 1:k + 1 + length])
                return b'', 0.0
            if instruction == SYNC_READ and servo_id == BROADCAST and len(params) >= 2:
                addr, length = params[0], params[1]
                replies, delay = [], 0.0
                for i in params[2:]:
                    servo = self.servos.get(i)
                    if servo:
                        reply, extra = self._status(servo, servo.read(addr, length))
                        replies.append(reply)
                        delay += extra
                return b''.join(replies), delay
            if instruction == PING and servo_id == BROADCAST:
                replies = [self._status(s) for s in self.servos.values()]
                return b''.join(r for r, _ in replies), sum(d for _, d in replies)
            servo = self.servos.get(servo_id)
            if servo is None:
                return b'', 0.0
            if instruction == PING:
                return self._status(servo)
            if instruction == READ and len(params) == 2:
                return self._status(servo, servo.read(params[0], params[1]))
            if instruction == WRITE and params:
                if servo.faults.dead:
                    return b'', 0.0
                self._write(servo, params[0], params[1:])
                return self._status(servo)
            return b'', 0.0

    def _write(self, servo: EmulatedServo, addr: int, data: bytes) -> None:
        old_id = servo.id
        servo.write(addr, data)
        if servo.id != old_id:          # the ID register moves the servo on the bus
            self.servos[servo.id] = self.servos.pop(old_id)
        if self.on_goal and addr <= GOAL_POSITION < addr + len(data):
            self.on_goal(time.monotonic(), servo.id, servo._word(GOAL_POSITION))


def calibration_for(joints, lower, upper, ids=range(1, 7), gripper_joint: str = 'gripper') -> dict:
    """A LeRobot calibration (``{joint: MotorCalibration fields}``) for an emulated
    arm whose joint limits, rad, are ``lower``/``upper``: what ``lerobot-calibrate``
    would record if the arm were moved through exactly that range."""
    steps = (RESOLUTION - 1) / (2 * math.pi)
    calibration = {}
    for name, servo_id, lo, hi in zip(joints, ids, lower, upper):
        calibration[name] = {
            'id': int(servo_id), 'drive_mode': 0, 'homing_offset': 0,
            'range_min': int(round(RESOLUTION // 2 + lo * steps)),
            'range_max': int(round(RESOLUTION // 2 + hi * steps))}
    return calibration


def encoder_steps(calibration: dict, joints, lerobot_values, gripper_joint: str = 'gripper') -> dict[int, float]:
    """Present_Position, per servo id, at which LeRobot's driver reads ``lerobot_values``
    (degrees, the gripper 0-100) with ``calibration``: its normalization run backwards.
    An arm joint reads 0 degrees at the middle of its calibrated range; the gripper
    spans its range over 0-100."""
    steps = {}
    for name, value in zip(joints, lerobot_values):
        c = calibration[name]
        lo, hi = c['range_min'], c['range_max']
        if name == gripper_joint:
            steps[c['id']] = lo + float(value) / 100.0 * (hi - lo)
        else:
            steps[c['id']] = (lo + hi) / 2.0 + float(value) * (RESOLUTION - 1) / 360.0
    return steps


class HandPathError(ValueError):
    """A hand path file that cannot be followed."""


@dataclass(frozen=True)
class HandPath:
    """Joint positions (rad, in ``joints`` order) at times (s): linear in between,
    the last point held (or, looping, the path run again)."""

    joints: tuple[str, ...]
    times: np.ndarray
    positions: np.ndarray          # len(times) x len(joints)

    @classmethod
    def load(cls, path: str | Path) -> HandPath:
        """A YAML file: ``joints: [names]`` and ``points: [{t: s, positions: [rad]}]``,
        times increasing from 0."""
        import yaml
        try:
            data = yaml.safe_load(Path(path).read_text())
            joints = tuple(data['joints'])
            times = np.array([float(p['t']) for p in data['points']])
            positions = np.array([[float(v) for v in p['positions']] for p in data['points']])
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as e:
            raise HandPathError(f'{path}: not a hand path ({e}); expected joints: [...] and '
                                f'points: [{{t: s, positions: [rad, ...]}}]') from None
        if len(times) == 0 or positions.shape != (len(times), len(joints)):
            raise HandPathError(f'{path}: every point needs {len(joints)} positions')
        if times[0] != 0 or np.any(np.diff(times) <= 0) or not np.all(np.isfinite(positions)):
            raise HandPathError(f'{path}: times must start at 0 and increase, positions be finite')
        return cls(joints, times, positions)

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    def at(self, t: float, loop: bool = False) -> np.ndarray:
        if loop and self.duration > 0:
            t %= self.duration
        t = min(max(t, 0.0), self.duration)
        i = min(bisect.bisect_right(self.times.tolist(), t), len(self.times) - 1)
        if i == 0:
            return self.positions[0].copy()
        t0, t1 = self.times[i - 1], self.times[i]
        s = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
        return self.positions[i - 1] + min(s, 1.0) * (self.positions[i] - self.positions[i - 1])


class ScriptedHand:
    """A hand moving an unpowered arm on ``bus`` along ``path``, ``rate`` times a second.

    ``to_lerobot`` maps the path's radians to LeRobot's units (the arm's
    ``JointUnits.to_policy``); ``calibration`` is the arm's LeRobot calibration, so
    the leader's driver reads back the path's positions."""

    def __init__(self, bus: EmulatedBus, path: HandPath, calibration: dict, to_lerobot,
                 loop: bool = True, rate: float = 200.0):
        unknown = [j for j in path.joints if j not in calibration]
        if unknown:
            raise HandPathError(f'the hand path moves {unknown}, which the arm does not have '
                                f'({list(calibration)})')
        self.bus, self.path, self.loop, self.period = bus, path, loop, 1.0 / rate
        self._calibration, self._to_lerobot = calibration, to_lerobot
        self._running = False
        self._thread: threading.Thread | None = None

    def place(self, t: float) -> None:
        """Put the arm where the path is at ``t`` s."""
        values = self._to_lerobot(self.path.at(t, self.loop))
        self.bus.turn_by_hand(encoder_steps(self._calibration, self.path.joints, values))

    def start(self) -> ScriptedHand:
        self.place(0.0)
        self._running = True
        self._thread = threading.Thread(target=self._move, name='scripted-hand', daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._running = False
        if self._thread:
            self._thread.join(timeout=2.0)

    def _move(self) -> None:
        start = time.monotonic()
        while self._running:
            self.place(time.monotonic() - start)
            time.sleep(self.period)
