"""One cheap pass over an episode bag: per topic, every message's time.

Stamps come straight from the CDR bytes (a ``std_msgs/Header`` or
``builtin_interfaces/Time`` first field sits at a fixed offset), so scanning a
bag of images costs reading it, not decoding it; and where the MCAP file has
its index (every complete episode) and uncompressed chunks, not even that:
the message indexes give each message's log time and position, and only the
first 12 bytes of each message are read. Messages without a stamp, or with a
zero one, take the bag's log time. ``inspect`` prints this; ``export`` plans
its frames from it before it writes anything.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field
import os
from pathlib import Path
import struct

import numpy as np

from robosandbox_data.episodes.bag import (
    decode, EpisodeBagError, EpisodeInfo, open_reader, read_info, typestore)

_STAMPED_FIRST_FIELDS = ('std_msgs/msg/Header', 'builtin_interfaces/msg/Time')
IMAGE = 'sensor_msgs/msg/Image'
JOINT_STATE = 'sensor_msgs/msg/JointState'
JOINT_TRAJECTORY = 'trajectory_msgs/msg/JointTrajectory'
TASK_STATUS = 'robosandbox_msgs/msg/TaskStatus'


@dataclass
class TopicScan:
    topic: str
    msgtype: str
    stamps: np.ndarray                 # s: header stamp, else log time
    log_times: np.ndarray              # s
    first: object = None               # the first message, decoded (small types and images)
    # Where each message's data lies in the MCAP file: known when the scan went
    # through the index, so a reader can fetch exactly the messages it wants.
    offsets: np.ndarray | None = None
    sizes: np.ndarray | None = None

    @property
    def count(self) -> int:
        return len(self.stamps)

    @property
    def duration(self) -> float:
        return float(self.stamps[-1] - self.stamps[0]) if self.count > 1 else 0.0

    @property
    def rate(self) -> float:
        return (self.count - 1) / self.duration if self.duration > 0 else 0.0

    @property
    def timing(self) -> dict:
        return stream_timing(self.stamps)

    def gaps(self, factor: float = 3.0) -> list[tuple[float, float]]:
        """(time, length) of the pauses longer than ``factor`` median periods."""
        if self.count < 3:
            return []
        d = np.diff(self.stamps)
        limit = factor * float(np.median(d))
        return [(float(self.stamps[i]), float(d[i])) for i in np.flatnonzero(d > limit)]


def stream_timing(times) -> dict:
    """How regularly a topic flowed, from its messages' times (s): the figures the
    recorder writes into each episode, ``inspect`` prints and the export's gap gate
    reads. ``rate_hz`` over the span, ``jitter_ms`` the standard deviation of the
    intervals, ``largest_gap_s`` the longest interval and when it began."""
    times = np.sort(np.asarray(times, dtype=float))
    figures = {'count': int(len(times)), 'rate_hz': 0.0, 'jitter_ms': 0.0,
               'largest_gap_s': 0.0, 'largest_gap_at': 0.0}
    if len(times) < 2:
        return figures
    intervals = np.diff(times)
    span, longest = float(times[-1] - times[0]), int(np.argmax(intervals))
    figures.update(rate_hz=round((len(times) - 1) / span, 3) if span > 0 else 0.0,
                   jitter_ms=round(1e3 * float(np.std(intervals)), 3),
                   largest_gap_s=round(float(intervals[longest]), 4),
                   largest_gap_at=round(float(times[longest]), 4))
    return figures


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


_DECODE_FIRST = (IMAGE, JOINT_STATE, JOINT_TRAJECTORY, TASK_STATUS, 'sensor_msgs/msg/CameraInfo')


def _indexed_messages(mcap_path: Path, topics: dict[str, str]):
    """(topic, log time ns, the first 12 bytes of data, file offset of data, data size)
    of every message, from the MCAP summary and message indexes; None where the file
    has no usable index (a crashed writer, compressed chunks): then read it all."""
    from mcap.reader import make_reader
    out = []
    with open(mcap_path, 'rb') as f:
        try:
            summary = make_reader(f).get_summary()
        except Exception:       # noqa: BLE001 - damaged footer: the full read reports it
            return None
        if summary is None or not summary.chunk_indexes or \
                any(c.compression for c in summary.chunk_indexes):
            return None
        channel_topic = {cid: ch.topic for cid, ch in summary.channels.items()}
        for chunk in summary.chunk_indexes:
            # Chunk record: opcode, length, start/end time, uncompressed size, crc,
            # compression string (empty), records length; then the records.
            records = chunk.chunk_start_offset + 1 + 8 + 8 + 8 + 8 + 4 + 4 + 0 + 8
            f.seek(chunk.chunk_start_offset + chunk.chunk_length)
            index = f.read(chunk.message_index_length)
            pos = 0
            while pos + 15 <= len(index):
                _opcode, length, channel = struct.unpack_from('<BQH', index, pos)
                (count_bytes,) = struct.unpack_from('<I', index, pos + 11)
                pairs = np.frombuffer(index, dtype='<u8', count=count_bytes // 8, offset=pos + 15)
                topic = channel_topic[channel]
                for log_time, offset in pairs.reshape(-1, 2).tolist():
                    # Message record: opcode, length, channel, sequence, log and publish
                    # time (31 bytes), then the data, whose first 12 bytes hold the stamp.
                    start = records + offset
                    head = os.pread(f.fileno(), 43, start)
                    (record_length,) = struct.unpack_from('<Q', head, 1)
                    out.append((topic, log_time, head[31:], start + 31, record_length - 22))
                pos += 9 + length
    out.sort(key=lambda m: m[1])          # the bag's log-time order (a stable sort)
    return [m for m in out if m[0] in topics]


def scan_episode(bag: Path, require_complete: bool = True) -> EpisodeScan:
    """Scan an episode bag; errors name the bag."""
    bag = Path(bag)
    scan = EpisodeScan(bag, read_info(bag))
    with closing(open_reader(bag, require_complete)) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        indexed = _indexed_messages(bag / f'{bag.name}.mcap', types)
        if indexed is not None:
            return _scan_indexed(scan, indexed, types, bag / f'{bag.name}.mcap')
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


def _scan_indexed(scan: EpisodeScan, messages, types: dict[str, str], mcap_path: Path) -> EpisodeScan:
    readers = {t: stamp_reader(m) for t, m in types.items()}
    stamps = {t: [] for t in types}
    logs = {t: [] for t in types}
    where = {t: [] for t in types}
    first = {}
    for topic, log_ns, head, offset, size in messages:
        logs[topic].append(log_ns * 1e-9)
        stamps[topic].append(message_time(readers[topic], head, log_ns))
        where[topic].append((offset, size))
        if topic not in first and types[topic] in _DECODE_FIRST:
            first[topic] = (offset, size)
    with open(mcap_path, 'rb') as f:
        for topic, (offset, size) in first.items():
            f.seek(offset)
            first[topic] = decode(f.read(size), types[topic])
    for topic, msgtype in types.items():
        spots = np.asarray(where[topic], dtype=np.int64).reshape(-1, 2)
        scan.topics[topic] = TopicScan(topic, msgtype, np.asarray(stamps[topic]),
                                       np.asarray(logs[topic]), first.get(topic),
                                       offsets=spots[:, 0], sizes=spots[:, 1])
    return scan
