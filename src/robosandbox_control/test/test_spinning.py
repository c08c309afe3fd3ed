"""A node's life under stop signals (robosandbox_control.spinning), in a child process:
its signal handlers must not touch the test runner's."""

import subprocess
import sys
import textwrap

NODE = textwrap.dedent('''
    import os, signal, sys
    import rclpy
    from rclpy.node import Node
    from robosandbox_control import spinning

    spinning.init()
    node = Node('spinning_test')
    original_destroy = node.destroy_node

    def destroy():
        print('destroyed', flush=True)      # where a hardware node turns torque off
        return original_destroy()

    node.destroy_node = destroy

    def tick():
        if sys.argv[1] == 'converted':
            # A stop signal landing while rclpy's C++ side builds a message for Python
            # reaches the executor as pybind11's RuntimeError, not KeyboardInterrupt.
            spinning.stop_requested.set()
            raise RuntimeError("Unable to convert call argument '0' to Python object")
        if sys.argv[1] == 'sigint':
            os.kill(os.getpid(), signal.SIGINT)
        raise RuntimeError('a real error in a callback')

    node.create_timer(0.01, tick)
    sys.exit(spinning.spin_node(node))
''')


def run(case: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', NODE, case], capture_output=True, text=True, timeout=60)


def test_a_stop_signal_turned_runtime_error_by_pybind_is_still_a_requested_stop():
    out = run('converted')
    assert out.returncode == 0, out.stderr
    assert 'destroyed' in out.stdout


def test_a_plain_sigint_is_a_requested_stop():
    out = run('sigint')
    assert out.returncode == 0, out.stderr
    assert 'destroyed' in out.stdout


def test_a_runtime_error_without_a_stop_request_still_fails_the_node_after_cleanup():
    out = run('error')
    assert out.returncode != 0
    assert 'a real error in a callback' in out.stderr
    assert 'destroyed' in out.stdout
