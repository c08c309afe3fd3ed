"""Spinning a node until something happens: for clients, examples and tests."""

from __future__ import annotations

import time

import rclpy
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
