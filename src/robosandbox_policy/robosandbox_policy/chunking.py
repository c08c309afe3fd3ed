"""Action chunks computed off the control path.

Chunking policies (ACT and kin) predict many future actions from one
observation. :class:`ChunkRunner` runs that inference in a worker thread and
asks for the next chunk early enough that the queue never runs dry: when the
actions left cover no more than the slowest of the recent inferences, with a
quarter to spare, plus one tick (on a shared CPU an inference can take several
times its median). A
chunk that arrives ``k`` ticks after its observation was taken starts at its
``k``-th action, so the actions stay aligned with time.

``synchronous`` (lockstep, where the sim waits for the policy) infers in line
instead, once the queue is empty, as LeRobot's ``select_action`` does: the
actions then depend on the observations only, never on the machine's speed.
"""

from __future__ import annotations

from collections import deque
import math
import threading
import time
from collections.abc import Callable

import numpy as np

from robosandbox_policy.observation import Observation
from robosandbox_policy.policy import PolicyError


class ChunkRunner:
    def __init__(self, infer: Callable[[Observation], np.ndarray], period: float,
                 name: str = 'policy-inference', synchronous: bool = False):
        self._infer = infer
        self.period = period
        self.synchronous = synchronous
        self._queue: deque[np.ndarray] = deque()
        self._cond = threading.Condition()
        self._request: tuple[int, int, Observation] | None = None    # (generation, tick, obs)
        self._result: tuple[int, np.ndarray] | None = None          # (tick, chunk)
        self._error: BaseException | None = None
        self._busy = False
        self._generation = 0
        self._running = True
        self.latency = 0.0            # s, the slowest recent inference
        self.inference_times: deque[float] = deque(maxlen=1000)
        self._recent: deque[float] = deque(maxlen=20)
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def expect_latency(self, seconds: float) -> None:
        """Count an inference timed elsewhere (a warm-up) among the recent ones."""
        with self._cond:
            self._recent.append(seconds)
            self.latency = max(self._recent)

    def reset(self) -> None:
        """Forget queued actions and any inference in flight (a new run)."""
        with self._cond:
            self._generation += 1
            self._queue.clear()
            self._result = None
            self._request = None
            self._error = None

    def next(self, obs: Observation, tick: int) -> np.ndarray | None:
        """The action for control tick ``tick``, or None when none is ready."""
        if self.synchronous:
            if not self._queue:
                start = time.perf_counter()
                try:
                    chunk = np.atleast_2d(self._infer(obs))
                except Exception as e:  # noqa: BLE001 - the run stops, naming it
                    raise PolicyError(f'inference failed: {e!r}') from e
                self.inference_times.append(time.perf_counter() - start)
                self._queue = deque(chunk)
            return self._queue.popleft()
        with self._cond:
            if self._error is not None:
                error, self._error = self._error, None
                raise PolicyError(f'inference failed: {error!r}') from error
            if self._result is not None:
                from_tick, chunk = self._result
                self._result = None
                stale = min(max(tick - from_tick, 0), len(chunk) - 1)
                self._queue = deque(chunk[stale:])
            action = self._queue.popleft() if self._queue else None
            margin = math.ceil(1.25 * self.latency / self.period) + 1 if self.period > 0 else 1
            if len(self._queue) < margin and not self._busy and self._request is None:
                self._request = (self._generation, tick, obs)
                self._cond.notify()
            return action

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._running and self._request is None:
                    self._cond.wait()
                if not self._running:
                    return
                generation, tick, obs = self._request
                self._request = None
                self._busy = True
            start = time.perf_counter()
            try:
                chunk = np.atleast_2d(self._infer(obs))
                error = None
            except Exception as e:  # noqa: BLE001 - handed to the control thread
                chunk, error = None, e
            elapsed = time.perf_counter() - start
            with self._cond:
                self._busy = False
                if generation != self._generation:
                    continue
                if error is not None:
                    self._error = error
                    continue
                self.inference_times.append(elapsed)
                self._recent.append(elapsed)
                self.latency = max(self._recent)
                self._result = (tick, chunk)

    def close(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        self._thread.join(timeout=5.0)
