"""The main job: ``ros2 launch robosandbox_bringup sim_policy.launch.py [policy:=...] [episodes:=N]``.

Sim, policy node and episode runner; the launch ends when the episodes are
done. The node graph is ``bringups/sim_policy.yaml``, shared with
``robosandbox launch sim_policy``.
"""

from robosandbox_cli.bringup import load_bringup


def generate_launch_description():
    return load_bringup('sim_policy').launch_description()
