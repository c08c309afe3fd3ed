"""Spinning nodes: a node's whole life (``init``, ``spin_node``), or until
something happens (clients, examples and tests)."""

from __future__ import annotations

from collections.abc import Callable
import os
import signal
import threading
import time

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Set by the first stop signal (see init).
stop_requested = threading.Event()


def init(args=None) -> None:
    """``rclpy.init`` for a node's ``main``, with shutdown signals handled once.

    The first SIGINT or SIGTERM raises KeyboardInterrupt in the main thread: a
    requested stop, after which the node cleans up and exits 0. Every later one
    is reported and ignored, so cleanup (torque off on the arm) runs to its end.
    Under rclpy's own handlers the second Ctrl-C, which ``ros2 launch`` always
    delivers (the terminal's and its own), killed a node in the middle of it.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)

    def already_stopping(signum, _frame) -> None:
        os.write(2, f'{signal.Signals(signum).name} ignored: already stopping\n'.encode())

    def stop(_signum, _frame) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, already_stopping)
        stop_requested.set()
        raise KeyboardInterrupt

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)


def shutdown() -> None:
    """The last step of a node's cleanup: ``rclpy.try_shutdown``, then stop signals
    ignored until the process has exited.

    rclpy would otherwise restore the default handlers, and so would Python's own
    finalization (it leaves only ignored signals alone): a second Ctrl-C or a
    SIGTERM arriving while the interpreter winds down would kill the process, and
    a requested stop would end with a signal's exit status instead of 0."""
    rclpy.try_shutdown(uninstall_handlers=False)
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def spin_until(node: Node, condition, timeout: float) -> bool:
    """Spin ``node`` until ``condition()`` holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        rclpy.spin_once(node, timeout_sec=0.02)
    return bool(condition())


def spin_for(node: Node, seconds: float) -> None:
    spin_until(node, lambda: False, seconds)


def wait_future(node: Node, future, timeout: float = 20.0):
    if not spin_until(node, future.done, timeout):
        raise TimeoutError(f'no answer within {timeout} s')
    return future.result()


def spin_node(node: Node, executor: Executor | None = None, alive=None) -> int:
    """Spin ``node`` until Ctrl-C, SIGTERM or shutdown (or, given ``alive``, until
    it returns False: a node whose own thread died), then destroy it and shut
    rclpy down: the body of a node's ``main`` after :func:`init`. Returns 0, the
    exit status."""
    executor = executor or SingleThreadedExecutor()
    executor.add_node(node)
    try:
        # Waits of at most 0.1 s: Python runs signal handlers (see init) only
        # between waits, and the executor's wait does not return on a signal.
        while rclpy.ok() and (alive is None or alive()):
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # The KeyboardInterrupt of a stop signal that lands while rclpy's C++ side
        # converts a message for Python comes out as pybind11's RuntimeError
        # ("Unable to convert call argument ..."): still a requested stop.
        if not stop_requested.is_set():
            raise
    finally:
        node.destroy_node()
        # Ctrl-C raises KeyboardInterrupt wherever the main thread is, even inside
        # the thread pool while it starts a worker: that worker then misses
        # Python's exit-time wake-up and the process never exits. Shutting the
        # executor down wakes every worker of its pool.
        executor.shutdown()
        shutdown()
    return 0


def run_node(name: str, make_node: Callable[[], Node], setup_errors: tuple[type[Exception], ...] = (),
             executor: Callable[[], Executor] | None = None, alive: Callable[[Node], bool] | None = None,
             failed: Callable[[Node], bool] | None = None, args=None) -> int:
    """A node's whole ``main``: :func:`init`, ``make_node()``, :func:`spin_node`; the exit status.

    A setup error (one of ``setup_errors``: a bad parameter, a missing port) is
    logged as fatal under ``name`` and exits 1 with nothing left running; Ctrl-C
    during the start is a requested stop (0). After a run, ``failed(node)`` says
    whether it ended in failure (1), e.g. its own thread died. ``executor`` makes the
    executor (after ``init``: an executor needs the context)."""
    init(args)
    try:
        node = make_node()
    except setup_errors as e:
        rclpy.logging.get_logger(name).fatal(str(e))
        shutdown()
        return 1
    except KeyboardInterrupt:
        shutdown()
        return 0
    spin_node(node, executor() if executor else None, alive=(lambda: alive(node)) if alive else None)
    return 1 if failed is not None and failed(node) else 0
