"""A LeRobot checkpoint as a policy: embodiment mapping around LeRobot's own inference.

Observations go through LeRobot's ``prepare_observation_for_inference`` and the
checkpoint's preprocessor; actions through its postprocessor. Policies that
predict chunks from one observation run through a :class:`ChunkRunner`;
others (observation history, e.g. Diffusion) call ``select_action`` each tick
in the same worker, one tick behind.

:class:`CheckpointModel` is the inference (no threads, no ROS);
:class:`CheckpointPolicy` runs it, here or in a process of its own
(:mod:`robosandbox_policy.inference_process`), behind the chunk runner.
"""

from __future__ import annotations

import time
import warnings

import cv2
import numpy as np

from robosandbox_control.environment_state import (
    environment_state, ENVIRONMENT_STATE, EnvironmentStateError, POSE_FIELDS)
from robosandbox_policy import checkpoint
from robosandbox_policy.chunking import ChunkRunner
from robosandbox_policy.embodiment import (
    EmbodimentError, fit_vector, guess_convention, joint_units, parse_image_topics)
from robosandbox_policy.inference_process import ModelProcess
from robosandbox_policy.observation import Observation
from robosandbox_policy.policy import control_rate, PolicyError

def _check_features(directory, config) -> None:
    """Refuse policies that take inputs no robosandbox topic provides."""
    from lerobot.configs.types import FeatureType
    unsupported = [k for k, f in config.input_features.items()
                   if f.type not in (FeatureType.STATE, FeatureType.VISUAL, FeatureType.ENV)]
    if unsupported:
        raise EmbodimentError(
            f'{directory}: the policy takes {unsupported}, which no robosandbox topic '
            f'provides (joint states, camera images and the task status\'s object poses only)')
    env = config.env_state_feature
    if env is not None and (len(env.shape) != 1 or env.shape[0] % len(POSE_FIELDS)):
        raise EmbodimentError(
            f'{directory}: its {ENVIRONMENT_STATE} has shape {tuple(env.shape)}; robosandbox feeds '
            f'{len(POSE_FIELDS)} values per object ({", ".join(POSE_FIELDS)})')
    if config.action_feature is None:
        raise EmbodimentError(f'{directory}: the policy has no "action" output')


class CheckpointModel:
    """A checkpoint's inference in ROS units: an observation in, an action chunk out."""

    # What a ModelProcess copies from the model in its child: everything but inference.
    DESCRIPTION = ('joint_names', 'fps', 'image_shapes', 'image_topics', 'needs_object_poses',
                   'units', 'warnings', 'latencies')

    def __init__(self, ref: str, joint_names, gripper_joint: str,
                 gripper_range: tuple[float, float], units: str = 'auto', image_topics=(),
                 device: str = 'cpu', torch_threads: int = 0, rate: float = 0.0):
        import torch

        if torch_threads > 0:
            torch.set_num_threads(torch_threads)
        self._torch = torch
        self.device = torch.device(device)
        self.joint_names = tuple(joint_names)

        def check(directory, config):
            # Everything that can be refused from the config alone, before the weights load.
            _check_features(directory, config)
            self.image_shapes = {k: tuple(f.shape) for k, f in config.image_features.items()}
            self.image_topics = parse_image_topics(image_topics, list(self.image_shapes))

        loaded = checkpoint.load(ref, device, check=check)
        self.loaded = loaded
        config = loaded.config
        self.fps = loaded.fps
        if not rate and not self.fps:
            # A chunk of actions timed at the wrong rate plays the motion too fast or too slow.
            raise checkpoint.CheckpointError(
                f'{loaded.directory} does not say the rate it was trained at (train_config.json has no '
                'env fps, and its dataset\'s meta/info.json is not at hand): give it, rate:=<the '
                "dataset's fps>")

        n = len(self.joint_names)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            state = config.robot_state_feature
            self._fit_state = fit_vector('observation.state', n, state.shape[0]) if state else None
            env = config.env_state_feature
            # A state-based policy: it waits for a task status, and takes its object poses.
            self.environment_size = env.shape[0] if env else 0
            self.needs_object_poses = bool(env)
            action_dim = config.action_feature.shape[0]
            if action_dim != n:
                warnings.warn(f'action: the policy drives {action_dim} values for {n} joints; '
                              + ('the extra ones are dropped' if action_dim > n
                                 else f'{self.joint_names[action_dim:]} hold'), stacklevel=2)
        self.warnings = [str(w.message) for w in caught]

        convention = guess_convention(loaded.state_stats) if units == 'auto' else units
        self.units = joint_units(convention, self.joint_names, gripper_joint, gripper_range)

        self._chunked = (getattr(config, 'n_obs_steps', 1) == 1
                         and hasattr(config, 'n_action_steps')
                         and getattr(config, 'temporal_ensemble_coeff', None) is None)
        self.n_action_steps = getattr(config, 'n_action_steps', 1) if self._chunked else 1
        self.latencies = self._warm_up()
        self.reset()

    def _warm_up(self) -> list[float]:
        """Two inferences on a neutral observation: fail now rather than mid-run, pay
        torch's first-call costs before the arm waits on them, and learn the latency (s)."""
        obs = Observation(time=0.0, joint_positions=np.zeros(len(self.joint_names)), images={
            key: np.full((h, w, 3), 128, np.uint8) for key, (_, h, w) in self.image_shapes.items()},
            object_poses={f'object{i}': (np.zeros(3), np.array([1.0, 0, 0, 0]))
                          for i in range(self.environment_size // len(POSE_FIELDS))})
        latencies = []
        for _ in range(2):
            start = time.perf_counter()
            self.predict_chunk(obs)
            latencies.append(time.perf_counter() - start)
        return latencies

    def reset(self) -> None:
        self.loaded.policy.reset()
        self.loaded.preprocessor.reset()
        self.loaded.postprocessor.reset()

    def batch(self, obs: Observation) -> dict:
        """LeRobot's observation dict (numpy, unbatched) for ``obs``."""
        out = {}
        if self._fit_state is not None:
            state = self._fit_state(self.units.to_policy(obs.joint_positions))
            out['observation.state'] = state.astype(np.float32)
        if self.environment_size:
            try:
                out[ENVIRONMENT_STATE] = environment_state(obs.object_poses, self.environment_size)
            except EnvironmentStateError as e:
                raise PolicyError(str(e)) from None
        for key, (_, height, width) in self.image_shapes.items():
            image = obs.images[key]
            if image.shape[:2] != (height, width):
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            out[key] = np.ascontiguousarray(image)
        return out

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        """Action chunk (k, joints) in ROS units for ``obs``."""
        from lerobot.policies.utils import prepare_observation_for_inference
        torch = self._torch
        loaded = self.loaded
        with torch.inference_mode():
            batch = prepare_observation_for_inference(self.batch(obs), self.device, obs.task)
            batch = loaded.preprocessor(batch)
            if self._chunked:
                actions = loaded.policy.predict_action_chunk(batch)[:, :self.n_action_steps]
            else:
                actions = loaded.policy.select_action(batch)
            actions = loaded.postprocessor(actions)
        actions = actions.reshape(-1, actions.shape[-1]).double().cpu().numpy()
        n = len(self.joint_names)
        k = min(actions.shape[1], n)
        chunk = (actions[:, :k] - self.units.offset[:k]) / self.units.scale[:k]
        if k < n:
            # Joints the policy does not drive hold where they were.
            chunk = np.hstack([chunk, np.broadcast_to(obs.joint_positions[k:], (len(chunk), n - k))])
        return chunk

    def close(self) -> None:
        pass


class CheckpointPolicy:
    """A LeRobot checkpoint as a :class:`~robosandbox_policy.policy.Policy`.

    ``own_process`` runs the model in a process of its own (what the node does):
    the executor's callbacks then leave its inference alone. ``synchronous``
    infers in line when the queue runs dry (lockstep).
    """

    def __init__(self, ref: str, joint_names, gripper_joint: str,
                 gripper_range: tuple[float, float], units: str = 'auto', image_topics=(),
                 device: str = 'cpu', torch_threads: int = 0, rate: float = 0.0,
                 synchronous: bool = False, own_process: bool = False):
        args = (ref, joint_names, gripper_joint, gripper_range)
        options = dict(units=units, image_topics=image_topics, device=device,
                       torch_threads=torch_threads, rate=rate)
        model = (ModelProcess(CheckpointModel, *args, **options) if own_process
                 else CheckpointModel(*args, **options))
        self.model = model
        self.inference_pid = model.pid if own_process else None
        self.joint_names, self.fps, self.units = model.joint_names, model.fps, model.units
        self.image_shapes, self.image_topics = model.image_shapes, model.image_topics
        self.needs_object_poses, self.warnings = model.needs_object_poses, model.warnings
        self.runner = ChunkRunner(model.predict_chunk, 1.0 / control_rate(rate, self.fps),
                                  synchronous=synchronous)
        for seconds in model.latencies:
            self.runner.expect_latency(seconds)
        self.reset()

    def reset(self) -> None:
        self.done = False
        self._tick = 0
        self.runner.reset()
        self.model.reset()

    def predict_chunk(self, obs: Observation) -> np.ndarray:
        """Action chunk (k, joints) in ROS units for ``obs``, now."""
        return self.model.predict_chunk(obs)

    def act(self, obs: Observation) -> np.ndarray | None:
        action = self.runner.next(obs, self._tick)
        self._tick += 1
        return action

    def close(self) -> None:
        self.runner.close()
        self.model.close()
