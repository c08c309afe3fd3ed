"""One cheap pass over an episode bag: per topic, every message's time.

Stamps come straight from the CDR bytes (a ``std_msgs/Header`` or
``builtin_interfaces/Time`` first field sits at a fixed offset), so scanning a
bag of images costs reading it, not decoding it. Messages without a stamp, or
with a zero one, take the bag's log time. ``inspect`` prints this; ``export``
plans its frames from it before it writes anything.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
import struct

import numpy as np

from robosandbox_policy.episodes.bag import (
    decode, EpisodeBagError, EpisodeInfo, open_reader, read_info, typestore)

_STAMPED_FIRST_FIELDS = ('std_msgs/msg/Header', 'builtin_interfaces/msg/Time')
IMAGE = 'sensor_msgs/msg/Image'
JOINT_STATE = 'sensor_msgs/msg/JointState'
JOINT_TRAJECTORY = 'trajectory_msgs/msg/JointTrajectory'


@dataclass
class TopicScan:
    topic: str
    msgtype: str
    stamps: np.ndarray                 # s: header stamp, else log time
    log_times: np.ndarray              # s
    first: object = None               # the first message, decoded (small types and images)

    @property
    def count(self) -> int:
        return len(self.stamps)

    @property
    def duration(self) -> float:
        return float(self.stamps[-1] - self.stamps[0]) if self.count > 1 else 0.0

    @property
    def rate(self) -> float:
        return (self.count - 1) / self.duration if self.duration > 0 else 0.0

    def gaps(self, factor: float = 3.0) -> list[tuple[float, float]]:
        """(time, length) of the pauses longer than ``factor`` median periods."""
        if self.count < 3:
            return []
        d = np.diff(self.stamps)
        limit = factor * float(np.median(d))
        return [(float(self.stamps[i]), float(d[i])) for i in np.flatnonzero(d > limit)]


@dataclass
class EpisodeScan:
    bag: Path
    info: EpisodeInfo
    topics: dict[str, TopicScan] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.bag.name

    def of_type(self, msgtype: str) -> list[TopicScan]:
        return [t for t in self.topics.values() if t.msgtype == msgtype]


def stamp_reader(msgtype: str):
    """A function CDR bytes -> stamp in s (None when zero), for types stamped
    first; None for other types."""
    fields = typestore().fielddefs.get(msgtype)
    if not fields or fields[1][0][1][1] not in _STAMPED_FIRST_FIELDS:
        return None

    def stamp(data: bytes) -> float | None:
        endian = '<' if data[1] == 1 else '>'
        sec, nanosec = struct.unpack_from(endian + 'iI', data, 4)
        return sec + nanosec * 1e-9 if (sec or nanosec) else None
    return stamp


def message_time(read_stamp, data: bytes, log_ns: int) -> float:
    """A message's time, s: its stamp, or its log time when it has none."""
    stamp = read_stamp(data) if read_stamp else None
    return stamp if stamp is not None else log_ns * 1e-9


_DECODE_FIRST = (IMAGE, JOINT_STATE, JOINT_TRAJECTORY, 'sensor_msgs/msg/CameraInfo')


def scan_episode(bag: Path, require_complete: bool = True) -> EpisodeScan:
    """Scan an episode bag; errors name the bag."""
    bag = Path(bag)
    scan = EpisodeScan(bag, read_info(bag))
    with closing(open_reader(bag, require_complete)) as reader:
        readers, stamps, logs, first = {}, {}, {}, {}
        for c in reader.connections:
            readers[c.topic] = stamp_reader(c.msgtype)
            stamps[c.topic], logs[c.topic] = [], []
        try:
            for conn, log_ns, data in reader.messages():
                topic = conn.topic
                logs[topic].append(log_ns * 1e-9)
                stamps[topic].append(message_time(readers[topic], data, log_ns))
                if topic not in first and conn.msgtype in _DECODE_FIRST:
                    first[topic] = decode(data, conn.msgtype)
        except Exception as e:      # rosbags raises a variety on damaged chunks
            raise EpisodeBagError(f'{bag}: corrupt or truncated bag ({type(e).__name__}: {e})') \
                from None
        for c in reader.connections:
            scan.topics[c.topic] = TopicScan(
                c.topic, c.msgtype, np.asarray(stamps[c.topic]), np.asarray(logs[c.topic]),
                first.get(c.topic))
    return scan
