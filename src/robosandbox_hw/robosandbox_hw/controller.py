"""The SO-101 control loop and its safety rules, free of ROS.

One thread reads the joints, samples the shared ``TrajectoryFollower`` and
writes goals at ``rate``. Between the two stands the :class:`GoalLimiter`:

* targets are clipped to the joint limits (commands outside them never get
  here: ``plan_trajectory`` refuses them and the arm holds);
* each goal moves at most ``max_velocity * dt`` from the last one, so a
  command faster than a joint's velocity limit is slowed down, not refused;
* after every enable, goals move at ``first_motion_velocity`` until they have
  reached the first commanded target: the first motion is always slow.

Faults: a failed read or write is retried by the bus; ``max_consecutive_failures``
failed cycles in a row put the arm in ``ERROR``, which holds (servos keep their
last goal) or releases torque (``on_error``). A servo reporting a protection
fault (overload, overheating, voltage) is fatal: torque is released. Leaving
``ERROR`` or ``EMERGENCY_STOP`` takes an explicit :meth:`So101Controller.enable`.
The watchdog, as joint_trajectory_controller's ``cmd_timeout``, counts from the
time of the last point of the latest streamed trajectory: ``command_timeout``
after it, an arm still short of that point (the limiter slowed it) holds where
it is. A streamed trajectory always plays to its end, however long it lasts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from robosandbox_control.trajectory import TrajectoryFollower
from robosandbox_hw.so101_bus import BusError, fatal_status, So101Bus

logger = logging.getLogger(__name__)


class ArmMode(str, Enum):
    TORQUE_OFF = 'torque_off'          # connected, not driving (before the first enable)
    ACTIVE = 'active'
    ERROR = 'error'
    EMERGENCY_STOP = 'emergency_stop'


@dataclass
class SafetyLimits:
    lower: np.ndarray                  # rad
    upper: np.ndarray                  # rad
    max_velocity: np.ndarray           # rad/s per joint
    first_motion_velocity: float       # rad/s, every joint, until the first target is reached


class GoalLimiter:
    """Turns the follower's targets into goals the servos may take this tick.

    ``max_dt`` caps the time one step may cover: after a stall (a loaded
    machine, a slow bus) a step of the whole elapsed time would move the goal
    in one jump, which the servos take at their full speed.
    """

    REACHED = 1e-3                     # rad

    def __init__(self, limits: SafetyLimits, max_dt: float):
        self.limits = limits
        self.max_dt = max_dt
        self.goal = np.zeros(len(limits.lower))
        self.ramping = True
        self._start = self.goal.copy()

    def reset(self, position: np.ndarray) -> None:
        self.goal = np.clip(np.asarray(position, dtype=float), self.limits.lower, self.limits.upper)
        self._start = self.goal.copy()
        self.ramping = True

    def step(self, target: np.ndarray, dt: float) -> np.ndarray:
        target = np.clip(target, self.limits.lower, self.limits.upper)
        speed = self.limits.first_motion_velocity if self.ramping else self.limits.max_velocity
        reach = np.asarray(speed * min(dt, self.max_dt))
        self.goal = self.goal + np.clip(target - self.goal, -reach, reach)
        if (self.ramping and np.max(np.abs(target - self._start)) > self.REACHED
                and np.max(np.abs(target - self.goal)) < self.REACHED):
            self.ramping = False
        return self.goal.copy()


@dataclass
class ControllerConfig:
    rate: float = 100.0                # Hz
    max_consecutive_failures: int = 5
    on_error: str = 'hold'             # 'hold' or 'release'
    command_timeout: float = 0.5       # s after a streamed trajectory's last point before the watchdog holds
    health_period: float = 1.0         # s between temperature/voltage/status reads

    def __post_init__(self):
        if self.on_error not in ('hold', 'release'):
            raise ValueError(f"on_error must be 'hold' or 'release', got {self.on_error!r}")
        if self.rate <= 0:
            raise ValueError('rate must be positive')


class So101Controller:
    """The control loop of one arm; ``on_state(stamp, position, velocity)`` gets every read."""

    def __init__(self, bus: So101Bus, limits: SafetyLimits, config: ControllerConfig,
                 follower: TrajectoryFollower, lock: threading.Lock,
                 stream_stalled: Callable[[float], bool],
                 on_state: Callable[[float, np.ndarray, np.ndarray], None]):
        self.bus = bus
        self.config = config
        self.limiter = GoalLimiter(limits, max_dt=2.0 / config.rate)
        self.follower = follower
        self.lock = lock                   # guards follower (shared with the command interface)
        self._stream_stalled = stream_stalled
        self._on_state = on_state
        self._bus_lock = threading.Lock()  # one transaction at a time: loop vs services
        self.mode = ArmMode.TORQUE_OFF
        self.error = ''
        self.failures_in_a_row = 0
        self.watchdog_trips = 0
        self.health: dict[str, np.ndarray] = {}
        self.periods: deque[float] = deque(maxlen=500)
        self.position: np.ndarray | None = None
        self.crashed = False
        self._running = False
        self._thread: threading.Thread | None = None
        self._arrived = threading.Event()  # a streamed target to write before the next cycle
        self._last_goal = time.monotonic()

    # --- commands (any thread) ------------------------------------------------------

    def start(self, enable: bool) -> None:
        """Read the arm once, then run the loop; ``enable`` turns torque on holding the pose."""
        with self._bus_lock:
            self.position = self.bus.read_positions()
        with self.lock:
            self.follower.hold(self.position)
        self.limiter.reset(self.position)
        if enable:
            self.enable()
        self._running = True
        self._thread = threading.Thread(target=self._loop, name='so101-control', daemon=True)
        self._thread.start()

    def command_arrived(self) -> None:
        """A new target was streamed: write it now, between two cycles, rather than up to
        a period later (reads and joint_states keep the loop's rate)."""
        self._arrived.set()

    def enable(self) -> str:
        """Torque on, holding the present pose; the next motion ramps slowly. '' or why not."""
        try:
            with self._bus_lock:
                position = self.bus.read_positions()
                with self.lock:
                    self.follower.hold(position)
                    self.limiter.reset(position)
                # Goal first, then torque: the servos hold where they are.
                self.bus.write_goals(position)
                self.bus.set_torque(True)
                health = self.bus.read_health()
        except BusError as e:
            return f'cannot enable: {e}'
        fault = fatal_status(self.bus.config.joints, health['status'])
        if fault:
            self._release(f'servo protection fault: {fault}')
            return f'cannot enable: {fault}'
        self.health = health
        self.failures_in_a_row = 0
        self.error = ''
        self.mode = ArmMode.ACTIVE
        logger.info('torque on, holding the present pose')
        return ''

    def emergency_stop(self) -> str:
        """Torque off now; '' when every servo acknowledged it."""
        self.mode = ArmMode.EMERGENCY_STOP
        with self.lock:
            self.follower.hold()
        try:
            with self._bus_lock:
                self.bus.set_torque(False)
        except BusError as e:
            return f'torque off not confirmed by every servo: {e}'
        logger.warning('emergency stop: torque off')
        return ''

    def stop(self) -> None:
        """End the loop and release torque (shutdown)."""
        self._running = False
        if self._thread:
            self._thread.join(timeout=2.0)
        with self._bus_lock:
            self.bus.close(torque_off=True)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def loop_rate(self) -> float:
        periods = list(self.periods)
        return 1.0 / float(np.median(periods)) if periods else 0.0

    # --- faults -----------------------------------------------------------------------

    def _release(self, reason: str) -> None:
        self.mode, self.error = ArmMode.ERROR, reason
        logger.error('%s; releasing torque', reason)
        try:
            with self._bus_lock:
                self.bus.set_torque(False)
        except BusError as e:
            logger.error('torque off failed too: %s', e)

    def _failed(self, error: BusError) -> None:
        self.failures_in_a_row += 1
        if self.mode is not ArmMode.ACTIVE or \
                self.failures_in_a_row < self.config.max_consecutive_failures:
            return
        reason = f'{self.failures_in_a_row} bus cycles failed in a row ({error})'
        with self.lock:
            self.follower.hold()
        if self.config.on_error == 'release':
            self._release(reason)
        else:
            self.mode, self.error = ArmMode.ERROR, reason
            logger.error('%s; holding: the servos keep their last goal', reason)

    # --- the loop -----------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            self._run_loop()
        except Exception:
            # A bug, not a bus fault (those are handled): release the arm and end the
            # node, so its supervisor sees a failed process rather than a frozen one.
            logger.exception('control loop failed; releasing torque')
            self.crashed = True
            self._release('control loop failed')

    def _run_loop(self) -> None:
        period = 1.0 / self.config.rate
        next_tick = last = time.monotonic()
        next_health = last + self.config.health_period
        while self._running:
            now = time.monotonic()
            self.periods.append(now - last)
            dt, last = now - last, now
            self._cycle(dt)
            if now >= next_health:
                next_health = now + self.config.health_period
                self._check_health()
            next_tick += period
            if next_tick <= time.monotonic():
                next_tick = time.monotonic()      # late: don't burst to catch up
            while (delay := next_tick - time.monotonic()) > 0 and self._arrived.wait(delay):
                self._arrived.clear()
                if self.mode is ArmMode.ACTIVE:
                    self._write_goal(time.time())

    def _cycle(self, dt: float) -> None:
        stamp = time.time()
        try:
            with self._bus_lock:
                position = self.bus.read_positions()
        except BusError as e:
            self._failed(e)
            return
        velocity = (position - self.position) / dt if self.position is not None and dt > 0 \
            else np.zeros_like(position)
        self.position = position
        self._on_state(stamp, position, velocity)
        if self.mode is not ArmMode.ACTIVE:
            self.failures_in_a_row = 0
            return
        if self._write_goal(stamp):
            self.failures_in_a_row = 0

    def _write_goal(self, stamp: float) -> bool:
        """The follower's target at ``stamp``, watched, limited and written; False after a
        bus error (counted)."""
        now = time.monotonic()
        dt, self._last_goal = now - self._last_goal, now
        with self.lock:
            target = self.follower.sample(stamp)
            if (self._stream_stalled(self.config.command_timeout)
                    and np.max(np.abs(target - self.limiter.goal)) > GoalLimiter.REACHED):
                # The streaming client went quiet while the arm, slowed by the
                # limiter, still chases its last target: stop where the arm is.
                self.follower.hold(self.limiter.goal)
                target = self.limiter.goal.copy()
                self.watchdog_trips += 1
                logger.warning('watchdog: no command for %.2f s after the last point; holding',
                               self.config.command_timeout)
        goal = self.limiter.step(target, dt)
        try:
            with self._bus_lock:
                if self.mode is ArmMode.ACTIVE:    # an e-stop may have come in meanwhile
                    self.bus.write_goals(goal)
        except BusError as e:
            self._failed(e)
            return False
        return True

    def _check_health(self) -> None:
        try:
            with self._bus_lock:
                health = self.bus.read_health()
        except BusError as e:
            self._failed(e)
            return
        self.health = health
        fault = fatal_status(self.bus.config.joints, health['status'])
        if fault and self.mode is ArmMode.ACTIVE:
            with self.lock:
                self.follower.hold()
            self._release(f'servo protection fault: {fault}')
