"""Episode bags: one rosbag2 directory (MCAP storage) per episode.

The episode's description lives in the bag's ``metadata.yaml`` under
``custom_data``, as flat ``robosandbox.*`` string keys, so ``ros2 bag info``,
rosbags or a YAML reader show it without our code. A bag is marked
``incomplete`` from the moment it is opened; only a clean close marks it
``complete``, so a recorder that dies mid-episode never leaves a bag that reads
as a finished one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from importlib.metadata import PackageNotFoundError, version
import json
from pathlib import Path
import struct

from rosbags.rosbag2 import Reader, ReaderError
from rosbags.typesys import get_types_from_msg, get_typestore, Stores
import yaml

PREFIX = 'robosandbox.'
COMPLETE = 'complete'
INCOMPLETE = 'incomplete'
METADATA_FILE = 'metadata.yaml'
_YAML_LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)    # libyaml: 10x faster


class EpisodeBagError(Exception):
    """A bag that cannot serve as an episode; the message names the bag."""


@dataclass
class EpisodeInfo:
    """What an episode bag says about itself (its metadata custom data)."""

    task: str = ''
    instruction: str = ''
    seed: int = -1
    policy: str = ''
    robot_type: str = ''
    status: str = INCOMPLETE
    success: str = 'unknown'          # 'true' | 'false' | 'unknown'
    end_reason: str = 'the recorder stopped before the episode ended'
    start_stamp: float = 0.0          # s, recorder clock
    stop_stamp: float = 0.0
    messages: int = 0
    dropped: int = 0
    dropped_by_topic: dict[str, int] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    # per topic: count, rate_hz, jitter_ms, largest_gap_s, largest_gap_at (see scan.stream_timing)
    topic_stats: dict[str, dict] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE

    @property
    def succeeded(self) -> bool:
        return self.complete and self.success == 'true'

    def custom_data(self) -> dict[str, str]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[PREFIX + f.name] = json.dumps(value, sort_keys=True) \
                if isinstance(value, dict) else str(value)
        return out

    @classmethod
    def from_custom_data(cls, data: dict | None) -> EpisodeInfo:
        data = data or {}
        info = cls()
        for f in fields(cls):
            raw = data.get(PREFIX + f.name)
            if raw is None:
                continue
            default = getattr(info, f.name)
            try:
                value = json.loads(raw) if isinstance(default, dict) else type(default)(raw)
            except ValueError:
                continue      # a hand-edited value: keep the default
            setattr(info, f.name, value)
        return info


RECORDED_VERSIONS = ('robosandbox_policy', 'rosbags', 'ros-rclpy', 'mujoco', 'lerobot')


def software_versions(distributions=RECORDED_VERSIONS) -> dict[str, str]:
    """Installed versions of ``distributions`` (those not installed left out)."""
    versions = {}
    for dist in distributions:
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return versions


def read_info(bag: Path) -> EpisodeInfo:
    """The episode description of ``bag``, from its metadata.yaml alone."""
    meta = Path(bag) / METADATA_FILE
    try:
        data = yaml.load(meta.read_text(), Loader=_YAML_LOADER)['rosbag2_bagfile_information']
    except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
        raise EpisodeBagError(f'{bag}: not a rosbag2 bag ({e})') from None
    return EpisodeInfo.from_custom_data(data.get('custom_data'))


def write_placeholder_metadata(bag: Path, storage_file: str, info: EpisodeInfo) -> None:
    """A metadata.yaml that marks a bag being written as incomplete.

    rosbags writes the real one when the bag closes; until then (and forever,
    if the writer dies) this one says what the bag is and that it is unfinished.
    """
    data = {'rosbag2_bagfile_information': {
        'version': 9, 'storage_identifier': 'mcap', 'relative_file_paths': [storage_file],
        'duration': {'nanoseconds': 0}, 'starting_time': {'nanoseconds_since_epoch': 0},
        'message_count': 0, 'topics_with_message_count': [], 'compression_format': '',
        'compression_mode': '', 'files': [], 'custom_data': info.custom_data(),
        'ros_distro': 'rosbags'}}
    tmp = bag / (METADATA_FILE + '.tmp')
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    tmp.replace(bag / METADATA_FILE)


def find_bags(paths) -> list[Path]:
    """Episode bags named by ``paths``: bag directories, or runs directories
    holding them (one level down), in name order."""
    bags = []
    for p in map(Path, paths):
        if (p / METADATA_FILE).exists():
            bags.append(p)
        elif p.is_dir():
            found = sorted(d for d in p.iterdir() if (d / METADATA_FILE).exists())
            if not found:
                raise EpisodeBagError(f'{p}: no episode bags in it')
            bags.extend(found)
        else:
            raise EpisodeBagError(f'{p}: no such bag or runs directory')
    return bags


_TYPESTORE = None


def typestore():
    """The Kilted type store plus our own interfaces (from their .msg files)."""
    global _TYPESTORE
    if _TYPESTORE is None:
        store = get_typestore(Stores.ROS2_KILTED)
        types = {}
        for name in ('TaskStatus',):
            text = _interface_text('robosandbox_msgs', 'msg', name)
            if text is not None:
                types.update(get_types_from_msg(text, f'robosandbox_msgs/msg/{name}'))
        store.register(types)
        _TYPESTORE = store
    return _TYPESTORE


def decode(data: bytes, msgtype: str):
    """A message from its CDR bytes, as rosbags reads it, but ignoring bytes
    after the message as rclpy's own deserializer does: rclpy may round a
    serialized message up by 8 bytes, more than rosbags' size check allows."""
    store = typestore()
    if len(data) < 4 or data[0] != 0 or data[1] not in (0, 1):
        raise ValueError(f'not a CDR encoded {msgtype}')
    msgdef = store.get_msgdef(msgtype)
    read = msgdef.deserialize_cdr_le if data[1] else msgdef.deserialize_cdr_be
    # A view, not a slice: an image's pixels stay where they were read, uncopied.
    return read(memoryview(data)[4:], 0, msgdef.cls, store)[0]


def _interface_text(package: str, kind: str, name: str) -> str | None:
    from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
    try:
        path = Path(get_package_share_directory(package)) / kind / f'{name}.{kind}'
    except PackageNotFoundError:
        return None
    return path.read_text() if path.exists() else None


def open_reader(bag: Path, require_complete: bool = True) -> Reader:
    """An open rosbags reader of the bag, or an error naming the bag."""
    info = read_info(bag)
    if require_complete and not info.complete:
        raise EpisodeBagError(f'{bag}: episode is incomplete ({info.end_reason})')
    reader = Reader(bag)
    try:
        reader.open()
    except (ReaderError, OSError, ValueError, AssertionError) as e:
        raise EpisodeBagError(f'{bag}: corrupt or truncated bag ({e})') from None
    if reader.message_count == 0:
        reader.close()
        raise EpisodeBagError(f'{bag}: empty bag (no messages)')
    return reader


def recoverable_messages(bag: Path) -> int:
    """Messages a streaming MCAP reader gets out of a bag whose writer died
    (no index, no footer): everything in the chunks that reached the disk."""
    from mcap.exceptions import McapError
    from mcap.records import Message
    from mcap.stream_reader import StreamReader
    count = 0
    try:
        with open(Path(bag) / f'{Path(bag).name}.mcap', 'rb') as f:
            for record in StreamReader(f).records:
                count += isinstance(record, Message)
    except (McapError, EOFError, struct.error, OSError, ValueError):
        pass          # the torn end of the file
    return count
