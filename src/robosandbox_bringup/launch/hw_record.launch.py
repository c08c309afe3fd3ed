"""``ros2 launch robosandbox_bringup hw_record.launch.py``: the node graph of ``bringups/hw_record.yaml``.

Shared with ``robosandbox launch hw_record``; see that file for the nodes and arguments.
"""

from robosandbox_cli.bringup import load_bringup


def generate_launch_description():
    return load_bringup('hw_record').launch_description()
