"""Data collection: ``ros2 launch robosandbox_bringup sim_record.launch.py episodes:=N runs_dir:=DIR``.

Sim, policy node, recorder and episode runner; each run is recorded as one
rosbag2 (MCAP) episode bag and the launch ends when the episodes are done. The
node graph is ``bringups/sim_record.yaml``, shared with ``robosandbox launch
sim_record``.
"""

from robosandbox_cli.bringup import load_bringup


def generate_launch_description():
    return load_bringup('sim_record').launch_description()
