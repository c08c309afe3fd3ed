"""MuJoCo SO-101 simulation, headless: ``ros2 launch robosandbox_bringup sim.launch.py``.

The node graph is ``bringups/sim.yaml``, shared with ``robosandbox launch sim``.
"""

from robosandbox_cli.bringup import load_bringup


def generate_launch_description():
    return load_bringup('sim').launch_description()
