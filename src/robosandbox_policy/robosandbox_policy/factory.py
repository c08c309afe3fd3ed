"""One ``policy`` string names every kind of policy the node runs.

* ``expert``: the scripted pick-and-place expert (sim only: it needs object poses);
* ``hold``: keep the arm where it is;
* ``replay:<episode bag | dataset dir#episode | file.csv>``: open-loop playback
  (:mod:`robosandbox_policy.replay`);
* a name in the ``robosandbox.policies`` entry point group, or ``module:Class``:
  the user's own policy (:mod:`robosandbox_policy.plugins`);
* anything else: a LeRobot checkpoint, a local directory or a Hub repo id.
"""

from __future__ import annotations

from dataclasses import dataclass

from robosandbox_description.robot import RobotDescription
from robosandbox_policy import plugins
from robosandbox_policy.checkpoint import CheckpointError, LegacyCheckpointError
from robosandbox_policy.policy import HoldPolicy, Policy
from robosandbox_policy.replay import ReplayPolicy, TrajectoryFileError

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
    lockstep: bool = False              # checkpoints: infer in line, when the queue runs dry
    inference_process: bool = False     # checkpoints: infer in a process of their own


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
        if not spec[len(REPLAY_PREFIX):].strip():      # else read as '.', "not a rosbag2 bag"
            raise TrajectoryFileError(f'{spec!r} names no recording\n{accepted()}')
        return ReplayPolicy(spec[len(REPLAY_PREFIX):], options.replay_lookahead,
                            robot.gripper_joint, robot.gripper_range)
    if spec in plugins.entry_points() or plugins.is_class_ref(spec):
        return plugins.UserPolicy(spec, robot)
    from robosandbox_policy.lerobot_policy import CheckpointPolicy
    try:
        return CheckpointPolicy(
            spec, options.joint_names or robot.joints, robot.gripper_joint, robot.gripper_range,
            units=options.units, image_topics=options.image_topics, device=options.device,
            torch_threads=options.torch_threads, rate=options.rate, synchronous=options.lockstep,
            own_process=options.inference_process)
    except LegacyCheckpointError:
        raise
    except CheckpointError as e:
        if 'not a LeRobot' in str(e) or 'no checkpoint directory' in str(e):
            raise CheckpointError(f'{e}\n{accepted()}') from e
        raise


def accepted() -> str:
    """What a ``policy`` string may be, for the error that refuses one."""
    installed = sorted(plugins.entry_points())
    return ('policy must be one of: expert; hold; replay:<episode bag | dataset dir#episode | file.csv>; '
            f"a name of the {plugins.ENTRY_POINT_GROUP} entry points "
            f"({', '.join(installed) if installed else 'none installed'}); package.module:Class; "
            'a LeRobot checkpoint directory (config.json, model.safetensors and the processor files) '
            'or a Hugging Face Hub repo id')

