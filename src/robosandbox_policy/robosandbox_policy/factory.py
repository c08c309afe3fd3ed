"""One ``policy`` string names every kind of policy the node runs.

* ``expert``: the scripted pick-and-place expert (sim only: it needs object poses);
* ``hold``: keep the arm where it is;
* ``replay:<file.csv>``: open-loop playback of a trajectory file;
* anything else: a LeRobot checkpoint, a local directory or a Hub repo id.
"""

from __future__ import annotations

from dataclasses import dataclass

from robosandbox_description.robot import RobotDescription
from robosandbox_policy.policy import HoldPolicy, Policy
from robosandbox_policy.replay import ReplayPolicy

REPLAY_PREFIX = 'replay:'


@dataclass(frozen=True)
class PolicyOptions:
    units: str = 'auto'                 # checkpoints: ros | lerobot_so101 | auto
    image_topics: tuple[str, ...] = ()  # checkpoints: '<image key>=<topic>' entries
    joint_names: tuple[str, ...] = ()   # checkpoints: the state/action joint order
    device: str = 'cpu'
    torch_threads: int = 0
    rate: float = 0.0                   # Hz; 0 = the policy's own
    replay_lookahead: float = 0.0       # s


def make_policy(spec: str, robot: RobotDescription, options: PolicyOptions = PolicyOptions()
                ) -> Policy:
    """The policy ``spec`` names, for ``robot``.

    Each kind imports what it needs when chosen: the expert loads MuJoCo, a
    checkpoint torch and LeRobot; ``hold`` and replays load neither.
    """
    if spec == 'expert':
        from robosandbox_policy.expert import PickPlaceExpert
        return PickPlaceExpert(robot)
    if spec == 'hold':
        return HoldPolicy(robot.joints)
    if spec.startswith(REPLAY_PREFIX):
        return ReplayPolicy(spec[len(REPLAY_PREFIX):], options.replay_lookahead)
    from robosandbox_policy.lerobot_policy import CheckpointPolicy
    return CheckpointPolicy(
        spec, options.joint_names or robot.joints, robot.gripper_joint, robot.gripper_range,
        units=options.units,
        image_topics=options.image_topics, device=options.device,
        torch_threads=options.torch_threads, rate=options.rate)
