"""Checkpoints made here, once per session: no download, no network."""

import json
from pathlib import Path
import shutil

import numpy as np
import pytest

from robosandbox_policy.random_checkpoint import write_random_act

HOME = np.array([0.0, -1.2, 1.1, 1.1, 0.0, 0.0])     # so101 home, rad
SMALL_ACT = dict(dim_model=32, dim_feedforward=64, n_heads=2, n_encoder_layers=1,
                 n_decoder_layers=1, chunk_size=20, n_action_steps=20)
CAMERA = {'front': (120, 160)}                        # half the sim's default 240x320


@pytest.fixture(scope='session')
def home() -> np.ndarray:
    return HOME.copy()


@pytest.fixture(scope='session')
def write_act():
    """``write_act(directory, center, spread)``: a small untrained ACT on the front camera."""
    def write(directory, center=HOME, spread=0.02):
        return write_random_act(directory, CAMERA, center, spread=spread, **SMALL_ACT)
    return write


@pytest.fixture(scope='session')
def act_checkpoint(tmp_path_factory, write_act) -> Path:
    """A small untrained ACT on the front camera, stats in radians around home."""
    return write_act(tmp_path_factory.mktemp('ckpt') / 'act')


@pytest.fixture(scope='session')
def hub_cache(tmp_path_factory, act_checkpoint) -> Path:
    """``act_checkpoint`` laid out as huggingface_hub caches ``robosandbox-test/tiny-act``."""
    cache = tmp_path_factory.mktemp('hf') / 'hub'
    repo = cache / 'models--robosandbox-test--tiny-act'
    revision = 'a' * 40
    shutil.copytree(act_checkpoint, repo / 'snapshots' / revision)
    (repo / 'refs').mkdir()
    (repo / 'refs' / 'main').write_text(revision)
    return cache


@pytest.fixture(scope='session')
def legacy_copy():
    """``legacy_copy(checkpoint, directory)``: see :func:`write_legacy_copy`."""
    return write_legacy_copy


def write_legacy_copy(checkpoint: Path, directory: Path) -> Path:
    """``checkpoint`` as LeRobot wrote checkpoints before 0.5: shapes and normalisation
    modes in the config, statistics as buffers in the weights, no processor files."""
    from safetensors.torch import load_file, save_file
    import torch
    from robosandbox_policy.checkpoint import load

    loaded = load(str(checkpoint))
    config = json.loads((checkpoint / 'config.json').read_text())
    shapes = lambda features: {k: v['shape'] for k, v in features.items()}  # noqa: E731
    legacy = {k: v for k, v in config.items()
              if k not in ('input_features', 'output_features', 'normalization_mapping')}
    legacy['input_shapes'] = shapes(config['input_features'])
    legacy['output_shapes'] = shapes(config['output_features'])
    modes = {'VISUAL': 'mean_std', 'STATE': 'mean_std', 'ACTION': 'mean_std'}
    legacy['input_normalization_modes'] = {
        k: modes[v['type']] for k, v in config['input_features'].items()}
    legacy['output_normalization_modes'] = {'action': 'mean_std'}
    weights = dict(load_file(checkpoint / 'model.safetensors'))
    for step in loaded.preprocessor.steps:
        for feature, stats in (getattr(step, 'stats', None) or {}).items():
            prefix = 'unnormalize_outputs' if feature == 'action' else 'normalize_inputs'
            for stat in ('mean', 'std'):
                weights[f'{prefix}.buffer_{feature.replace(".", "_")}.{stat}'] = \
                    torch.as_tensor(np.asarray(stats[stat])).clone().contiguous()
    directory.mkdir(parents=True)
    shutil.copy2(checkpoint / 'train_config.json', directory / 'train_config.json')
    (directory / 'config.json').write_text(json.dumps(legacy))
    save_file(weights, directory / 'model.safetensors')
    return directory
