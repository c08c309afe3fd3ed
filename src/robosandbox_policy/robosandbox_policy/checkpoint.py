"""LeRobot checkpoints: find, validate and load them with LeRobot's own code.

A checkpoint is a local directory or a Hub repo id (fetched through
huggingface_hub into its cache; ``HF_HUB_OFFLINE=1`` works from the cache).
Only ``config.json``, processor JSON and safetensors files are read: no
pickles, no code from the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import os
from pathlib import Path
import re

CONFIG_FILE = 'config.json'
WEIGHTS_FILE = 'model.safetensors'
PREPROCESSOR_FILE = 'policy_preprocessor.json'
POSTPROCESSOR_FILE = 'policy_postprocessor.json'
# Enough to run a checkpoint; nothing executable.
HUB_PATTERNS = ['*.json', '*.safetensors', '*.md']
_REPO_ID = re.compile(r'^[\w.-]+/[\w.-]+$')


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or of a kind we cannot run."""


class LegacyCheckpointError(CheckpointError):
    """A checkpoint in LeRobot's pre-0.5 format; ``robosandbox migrate-checkpoint`` converts it."""


def resolve(ref: str) -> Path:
    """Local directory of checkpoint ``ref`` (a path, or a Hub repo id downloaded or cached)."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f'checkpoint {ref!r} is a file; give its directory')
    if not _REPO_ID.match(ref) or ref.startswith(('.', '/', '~')):
        raise CheckpointError(f'no checkpoint directory at {ref!r}')
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    try:
        return Path(snapshot_download(ref, allow_patterns=HUB_PATTERNS))
    except LocalEntryNotFoundError as e:
        raise CheckpointError(
            f'{ref!r} is neither a local directory nor in the Hugging Face cache, and the Hub '
            f'cannot be reached (HF_HUB_OFFLINE set or no network): {e}') from e
    except HfHubHTTPError as e:
        raise CheckpointError(f'cannot download {ref!r} from the Hugging Face Hub: {e}') from e


def read_config(directory: Path) -> dict:
    """The checkpoint's ``config.json``, after checking the files a run needs are there."""
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise CheckpointError(f'{directory} has no {CONFIG_FILE}: not a LeRobot checkpoint')
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f'{config_path} is unreadable: {e}') from e
    if not isinstance(config, dict) or 'type' not in config:
        raise CheckpointError(f'{config_path} has no policy "type": not a LeRobot policy config')
    if is_legacy(config):
        raise LegacyCheckpointError(
            f"{directory} is in LeRobot's pre-0.5 format (input_shapes, normalisation kept in "
            f'the weights). {_migrate_hint(directory)}')
    if not (directory / WEIGHTS_FILE).is_file():
        others = sorted(p.name for p in directory.glob('*.bin')) + \
            sorted(p.name for p in directory.glob('*.pt*'))
        hint = f' (found {others}: only safetensors weights are loaded)' if others else ''
        raise CheckpointError(f'{directory} has no {WEIGHTS_FILE}{hint}')
    for name in (PREPROCESSOR_FILE, POSTPROCESSOR_FILE):
        if not (directory / name).is_file():
            raise LegacyCheckpointError(
                f'{directory} has no {name}: it keeps normalisation in the weights, as LeRobot '
                f'did before 0.4. {_migrate_hint(directory)}')
    return config


def _migrate_hint(directory: Path) -> str:
    return (f'Convert it once with `robosandbox migrate-checkpoint {directory}`, then run '
            f'{directory.parent / (directory.name + "_migrated")}')


def is_legacy(config: dict) -> bool:
    return 'input_shapes' in config or 'output_shapes' in config


@dataclass
class LoadedCheckpoint:
    directory: Path
    config: object                 # lerobot PreTrainedConfig
    policy: object                 # lerobot PreTrainedPolicy, eval mode
    preprocessor: object           # PolicyProcessorPipeline
    postprocessor: object
    state_stats: dict | None       # normalisation stats of observation.state, if any
    fps: float | None              # the rate it was trained for, when known (see _fps)


def load(ref: str, device: str = 'cpu', check=None) -> LoadedCheckpoint:
    """Load checkpoint ``ref`` and its processors with LeRobot's factory.

    ``check(directory, config)`` may refuse the policy config before any weights load.
    """
    directory = resolve(ref)
    read_config(directory)
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors
    try:
        config = PreTrainedConfig.from_pretrained(directory)
    except Exception as e:  # noqa: BLE001 - draccus raises many kinds; all mean the same
        raise CheckpointError(f'{directory / CONFIG_FILE} is not a valid LeRobot config: {e}') from e
    config.device = device
    if hasattr(config, 'pretrained_backbone_weights'):
        # The checkpoint's weights replace the backbone's; don't fetch ImageNet ones first.
        config.pretrained_backbone_weights = None
    if check is not None:
        check(directory, config)
    try:
        policy = get_policy_class(config.type).from_pretrained(directory, config=config, strict=True)
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f'cannot load the weights of {directory}: {e}') from e
    policy.eval()
    try:
        preprocessor, postprocessor = make_pre_post_processors(
            config, pretrained_path=str(directory),
            preprocessor_overrides={'device_processor': {'device': device}},
            postprocessor_overrides={'device_processor': {'device': 'cpu'}})
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f'cannot load the processors of {directory}: {e}') from e
    return LoadedCheckpoint(directory, config, policy, preprocessor, postprocessor,
                            _state_stats(preprocessor), _fps(directory))


def _state_stats(preprocessor) -> dict | None:
    for step in getattr(preprocessor, 'steps', []):
        stats = getattr(step, 'stats', None)
        if stats and 'observation.state' in stats:
            return {k: v.cpu().numpy() if hasattr(v, 'cpu') else v
                    for k, v in stats['observation.state'].items()}
    return None


def _fps(directory: Path) -> float | None:
    """The control rate the policy was trained for: the eval env's fps in
    train_config.json, else the fps of the training dataset (its ``root``, or
    LeRobot's cache of its repo id), when that dataset is at hand. LeRobot's
    training config records no fps of its own."""
    path = directory / 'train_config.json'
    if not path.is_file():
        return None
    try:
        train = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    fps = (train.get('env') or {}).get('fps')
    if isinstance(fps, (int, float)) and fps > 0:
        return float(fps)
    dataset = train.get('dataset') or {}
    roots = [Path(dataset['root']).expanduser()] if dataset.get('root') else []
    if dataset.get('repo_id'):
        home = Path(os.environ.get('HF_LEROBOT_HOME', Path.home() / '.cache' / 'huggingface' / 'lerobot'))
        roots.append(home.expanduser() / dataset['repo_id'])
    for root in roots:
        try:
            fps = json.loads((root / 'meta' / 'info.json').read_text()).get('fps')
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(fps, (int, float)) and fps > 0:
            return float(fps)
    return None
