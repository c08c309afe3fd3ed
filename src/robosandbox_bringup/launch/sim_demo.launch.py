"""Simulation plus a client touring its interface: ``ros2 launch robosandbox_bringup sim_demo.launch.py``.

The node graph is ``bringups/sim_demo.yaml``, shared with ``robosandbox launch sim_demo``.
"""

from robosandbox_cli.bringup import load_bringup


def generate_launch_description():
    return load_bringup('sim_demo').launch_description()
