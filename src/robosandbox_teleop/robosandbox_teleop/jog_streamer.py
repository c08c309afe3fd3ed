"""The jogged target, streamed to the follower: rclpy glue shared by the keyboard and the gamepad.

The target starts where the follower's ``joint_states`` says it is; each change
(a key, a gamepad tick) moves it; a thread streams it ``rate`` times a second
(``Follower``, as ``so101_leader`` does), through ``TeleopStream``: the
follower is led to it slowly at the start and after a far change (home).
"""

from __future__ import annotations

from collections.abc import Callable
import threading
import time

import numpy as np
from rclpy.node import Node

from robosandbox_teleop.jog import Jog
from robosandbox_teleop.stream import TeleopStream, TeleopStreamConfig
from robosandbox_teleop.targets import Follower

Change = Callable[[np.ndarray], tuple[np.ndarray | None, str]]


class JogStreamer:

    def __init__(self, node: Node, jog: Jog, rate: float, approach_velocity: float):
        self.node, self.jog, self.period = node, jog, 1.0 / rate
        self.stream = TeleopStream(TeleopStreamConfig(approach_velocity))
        self._target: np.ndarray | None = None
        self._lock = threading.Lock()
        self._running = False
        self._thread: threading.Thread | None = None
        self.follower = Follower(node, jog.joints)

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._loop, name='jog', daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def apply(self, change: Change, slowly: bool = False) -> str:
        """Move the target by ``change``; ``slowly``: lead the follower there at the
        approach speed (a far change). A line for the operator."""
        with self._lock:
            if self._target is None:
                return 'no joint_states from the follower yet'
            target, line = change(self._target)
            if target is not None:
                self._target = target
                if slowly:
                    self.stream.reset()
        return line

    def _loop(self) -> None:
        next_tick, last = time.monotonic(), None
        while self._running:
            next_tick += self.period
            follower = self.follower.positions
            with self._lock:
                if self._target is None and follower is not None:
                    self._target = follower.copy()
                desired = None if self._target is None else self._target.copy()
            if desired is not None:
                now = time.monotonic()
                target = self.stream.target(desired, follower, self.period if last is None else now - last)
                last = now
                if target is not None:
                    self.follower.command(target, self.node.get_clock().now().to_msg())
            time.sleep(max(0.0, next_tick - time.monotonic()))
