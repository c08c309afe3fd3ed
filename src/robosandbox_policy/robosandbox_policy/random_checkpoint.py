"""Write an untrained ACT checkpoint in LeRobot's format, without a download.

For tests, benchmarks and trying a bringup before any training: the weights
are random, the normalisation stats centre actions on a given pose with a
small spread, so the arm twitches around it instead of slamming into limits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_random_act(directory: str | Path, cameras: dict[str, tuple[int, int]],
                     center: np.ndarray, spread: float = 0.02, seed: int = 0,
                     fps: float | None = 30.0, environment_size: int = 0, **config) -> Path:
    """ACT with one image input per camera ``{name: (height, width)}`` and a state and
    action the size of ``center`` (in the units the stats should have); with
    ``environment_size``, an ``observation.environment_state`` of that many values too.

    ``fps`` goes into a train_config.json as its eval env's rate (None: no
    train_config.json, as a checkpoint copied without it).
    ``config`` overrides ACTConfig fields (e.g. ``dim_model=64`` for a small one).
    """
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    torch.manual_seed(seed)
    n = len(center)
    inputs = {'observation.state': PolicyFeature(FeatureType.STATE, (n,))}
    for name, (height, width) in cameras.items():
        inputs[f'observation.images.{name}'] = PolicyFeature(FeatureType.VISUAL, (3, height, width))
    if environment_size:
        inputs['observation.environment_state'] = PolicyFeature(FeatureType.ENV, (environment_size,))
    cfg = ACTConfig(input_features=inputs,
                    output_features={'action': PolicyFeature(FeatureType.ACTION, (n,))},
                    pretrained_backbone_weights=None, device='cpu', **config)
    center = torch.as_tensor(np.asarray(center, dtype=np.float32))
    vector_stats = {'mean': center, 'std': torch.full((n,), spread),
                    'min': center - 3 * spread, 'max': center + 3 * spread}
    stats = {'observation.state': dict(vector_stats), 'action': dict(vector_stats)}
    if environment_size:
        stats['observation.environment_state'] = {
            'mean': torch.zeros(environment_size), 'std': torch.ones(environment_size),
            'min': -torch.ones(environment_size), 'max': torch.ones(environment_size)}
    for name in cameras:
        stats[f'observation.images.{name}'] = {
            'mean': torch.full((3, 1, 1), 0.5), 'std': torch.full((3, 1, 1), 0.25),
            'min': torch.zeros(3, 1, 1), 'max': torch.ones(3, 1, 1)}
    policy = ACTPolicy(cfg)
    preprocessor, postprocessor = make_pre_post_processors(cfg, dataset_stats=stats)
    directory = Path(directory)
    policy.save_pretrained(directory)
    preprocessor.save_pretrained(directory)
    postprocessor.save_pretrained(directory)
    if fps is not None:
        (directory / 'train_config.json').write_text(json.dumps(
            {'dataset': None, 'env': {'fps': fps}, 'note': 'untrained: written by write_random_act'}))
    return directory
