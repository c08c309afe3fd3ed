"""``robosandbox migrate-checkpoint``: bring an old LeRobot checkpoint to today's format.

Before 0.4, LeRobot kept normalisation statistics inside the weights; before
0.5 configs described features as ``input_shapes`` / ``output_shapes`` with
per-key ``*_normalization_modes``. The weights side of the conversion is
LeRobot's own (``lerobot.processor.migrate_policy_normalization``); this
module translates the old config keys it does not handle, then saves a
checkpoint with processors beside the original (``<dir>_migrated``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
import shutil
import sys
import tempfile

from robosandbox_policy.checkpoint import (
    CheckpointError, CONFIG_FILE, is_legacy, resolve, WEIGHTS_FILE)

_LEGACY_KEYS = ('input_shapes', 'output_shapes', 'input_normalization_modes',
                'output_normalization_modes')


def _feature_type(key: str) -> str:
    if key.startswith('observation.image'):
        return 'VISUAL'
    if key == 'action':
        return 'ACTION'
    if key == 'observation.environment_state':
        return 'ENV'
    return 'STATE'


def translate_config(config: dict) -> tuple[dict, dict[str, dict]]:
    """New-style config fields from a pre-0.5 config: (fields, features by key)."""
    fields = {k: v for k, v in config.items() if k not in _LEGACY_KEYS and k != 'type'}
    features = {}
    for group in ('input_shapes', 'output_shapes'):
        for key, shape in (config.get(group) or {}).items():
            features[key] = {'type': _feature_type(key), 'shape': list(shape)}
    modes = {**(config.get('input_normalization_modes') or {}),
             **(config.get('output_normalization_modes') or {})}
    mapping = dict(config.get('normalization_mapping') or {})
    for key, mode in modes.items():
        mapping.setdefault(_feature_type(key), str(mode).upper())
    if mapping:
        fields['normalization_mapping'] = mapping
    return fields, features


def migrate(source: str, output: Path | None = None) -> Path:
    """Write a migrated copy of checkpoint ``source``; return its directory."""
    import torch
    from safetensors.torch import load_file
    from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
    from lerobot.policies import get_policy_class, make_policy_config, make_pre_post_processors
    from lerobot.processor import migrate_policy_normalization as lerobot_migration

    directory = resolve(source)
    try:
        config = json.loads((directory / CONFIG_FILE).read_text())
        state_dict = load_file(directory / WEIGHTS_FILE)
    except (OSError, ValueError) as e:
        raise CheckpointError(f'cannot read {directory}: {e}') from e
    if 'type' not in config:
        raise CheckpointError(f'{directory / CONFIG_FILE} has no policy "type"')
    policy_type = config['type']

    stats = lerobot_migration.extract_normalization_stats(state_dict)
    if not stats and not is_legacy(config):
        raise CheckpointError(f'{directory} needs no migration: it is already in the current format')
    fields, features = translate_config(config) if is_legacy(config) else (
        {k: v for k, v in config.items() if k != 'type'}, {})
    for group, wanted in (('input_features', ('VISUAL', 'STATE', 'ENV')), ('output_features', ('ACTION',))):
        chosen = {k: v for k, v in features.items() if v['type'] in wanted} or fields.get(group) or {}
        fields[group] = {k: PolicyFeature(FeatureType(v['type']), tuple(v['shape']))
                         for k, v in chosen.items()}
    fields['normalization_mapping'] = {
        FeatureType(k): NormalizationMode(v) for k, v in (fields.get('normalization_mapping') or {}).items()}

    config_class = type(make_policy_config(policy_type))
    known = {f.name for f in dataclasses.fields(config_class)}
    dropped = sorted(set(fields) - known)
    if dropped:
        print(f'migrate-checkpoint: dropping config keys this LeRobot no longer has: {dropped}')
    fields = {k: v for k, v in fields.items() if k in known}
    backbone = fields.pop('pretrained_backbone_weights', None)
    policy_config = make_policy_config(policy_type, **fields)
    if hasattr(policy_config, 'pretrained_backbone_weights'):
        policy_config.pretrained_backbone_weights = None   # the checkpoint brings the weights

    weights = lerobot_migration.clean_state_dict(
        lerobot_migration.remove_normalization_layers(state_dict), remove_str='._orig_mod')
    policy = get_policy_class(policy_type)(policy_config)
    missing = lerobot_migration.load_state_dict_with_missing_key_handling(
        policy, weights, policy_type, known_missing_keys_whitelist={})
    if missing:
        raise CheckpointError(f'{directory}: the weights lack {len(missing)} parameters of a '
                              f'{policy_type} policy (first: {missing[:3]}); not migrated')
    policy.to(torch.float32)
    preprocessor, postprocessor = make_pre_post_processors(policy_cfg=policy_config,
                                                           dataset_stats=stats)
    if hasattr(policy_config, 'pretrained_backbone_weights'):
        policy_config.pretrained_backbone_weights = backbone

    output = Path(output) if output else directory.parent / f'{directory.name}_migrated'
    if output.exists():
        raise CheckpointError(f'{output} already exists; remove it or pass --output')
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f'.{output.name}.', dir=output.parent))
    try:
        policy.save_pretrained(staging)
        preprocessor.save_pretrained(staging)
        postprocessor.save_pretrained(staging)
        if (directory / 'train_config.json').is_file():     # what says the rate it was trained at
            shutil.copy2(directory / 'train_config.json', staging / 'train_config.json')
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output


def _run(args: argparse.Namespace) -> int:
    try:
        output = migrate(args.checkpoint, args.output)
    except CheckpointError as e:
        print(f'robosandbox migrate-checkpoint: {e}', file=sys.stderr)
        return 1
    print(f'migrated checkpoint written to {output}\nrun it with policy:={output}')
    return 0


def add_command(subparsers) -> None:
    """Entry point of the ``robosandbox.commands`` group."""
    parser = subparsers.add_parser(
        'migrate-checkpoint', help="convert a pre-0.5 LeRobot checkpoint to today's format")
    parser.add_argument('checkpoint', help='checkpoint directory or Hub repo id')
    parser.add_argument('--output', type=Path, default=None,
                        help='where to write it (default: <checkpoint>_migrated beside it)')
    parser.set_defaults(func=_run)
