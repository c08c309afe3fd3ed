"""``ros2 launch robosandbox_bringup hw_emulated.launch.py``: the node graph of ``bringups/hw_emulated.yaml``.

Shared with ``robosandbox launch hw_emulated``; see that file for the nodes and arguments.
"""

from robosandbox_cli.bringup import load_bringup


def generate_launch_description():
    return load_bringup('hw_emulated').launch_description()
