"""``ros2 launch robosandbox_bringup hw.launch.py``: the node graph of ``bringups/hw.yaml``.

Shared with ``robosandbox launch hw``; see that file for the nodes and arguments.
"""

from robosandbox_cli.bringup import load_bringup


def generate_launch_description():
    return load_bringup('hw').launch_description()
