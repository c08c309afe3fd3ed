"""Spinning nodes: a node's whole life (``spin_node``), or until something
happens (clients, examples and tests)."""

from __future__ import annotations

import time

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


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
    """Spin ``node`` until Ctrl-C or shutdown (or, given ``alive``, until it
    returns False: a node whose own thread died), then destroy it and shut
    rclpy down: the body of a node's ``main``. Returns 0, the exit status."""
    executor = executor or SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if alive is None:
            executor.spin()
        while alive is not None and rclpy.ok() and alive():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        # Ctrl-C raises KeyboardInterrupt wherever the main thread is, even inside
        # the thread pool while it starts a worker: that worker then misses
        # Python's exit-time wake-up and the process never exits. Shutting the
        # executor down wakes every worker of its pool.
        executor.shutdown()
        rclpy.try_shutdown()
    return 0
