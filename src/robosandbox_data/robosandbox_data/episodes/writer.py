"""Writes one episode bag from serialized messages, off the caller's thread.

``put`` only appends to a bounded in-memory queue (the ROS callbacks call it);
a writer thread hands the bytes to rosbags' MCAP writer as they are, closing
an MCAP chunk at least every ``flush_period`` seconds so that a crash loses
at most that much. Whatever cannot be queued or written is counted as
dropped, never silently lost.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
import threading
import time

from rosbags.rosbag2 import StoragePlugin, Writer

from robosandbox_data.episodes.bag import (
    COMPLETE, EpisodeInfo, INCOMPLETE, software_versions, typestore, write_placeholder_metadata)
from robosandbox_data.episodes.scan import message_time, stamp_reader, stream_timing


WAKE_PERIOD = 0.05      # s between the writer thread's rounds


@dataclass
class WriterConfig:
    max_queue_bytes: int = 512 * 2**20   # about 2 s of two 480x640 cameras at 30 Hz
    flush_period: float = 1.0            # s between forced MCAP chunk closes


@dataclass(frozen=True)
class EpisodeSummary:
    bag: Path
    complete: bool
    messages: int
    dropped: int
    bytes: int
    duration: float       # s, from the start stamp to the stop stamp
    error: str


class EpisodeWriter:

    def __init__(self, bag: Path, info: EpisodeInfo, config: WriterConfig = WriterConfig()):
        self.bag = Path(bag)
        self.info = info
        self.config = config
        info.status = INCOMPLETE
        info.versions = software_versions()
        self._writer = Writer(self.bag, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        write_placeholder_metadata(self.bag, f'{self.bag.name}.mcap', info)
        self._connections = {}
        self._stamp_readers = {}                     # topic -> CDR stamp reader (or None)
        self._times: dict[str, list[float]] = {}     # topic -> each written message's time, s
        self._queue: deque = deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._io = threading.Lock()
        self._closing = False
        self.error = ''
        self.written = 0
        self.written_bytes = 0
        self.dropped: Counter[str] = Counter()
        self._thread = threading.Thread(target=self._run, name='episode-writer', daemon=True)
        self._thread.start()

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare ``topic`` (``pkg/msg/Type``) before its first ``put``."""
        with self._io:     # the writer thread may be inside rosbags right now
            if topic not in self._connections:
                self._connections[topic] = self._writer.add_connection(
                    topic, msgtype, typestore=typestore())
                self._stamp_readers[topic] = stamp_reader(msgtype)
                self._times[topic] = []

    @property
    def topics(self) -> list[str]:
        return list(self._connections)

    def put(self, topic: str, log_time_ns: int, data: bytes) -> None:
        with self._cond:
            if self.error or self._closing or \
                    self._queued_bytes + len(data) > self.config.max_queue_bytes:
                self.dropped[topic] += 1
                return
            self._queue.append((topic, log_time_ns, data))
            self._queued_bytes += len(data)
            # The writer wakes on its own every WAKE_PERIOD; waking it per
            # message would cost a thread switch per message.
            if self._queued_bytes > self.config.max_queue_bytes // 4:
                self._cond.notify()

    def count_lost(self, topic: str, n: int) -> None:
        """Messages lost before they reached us (publisher sequence gaps)."""
        with self._cond:
            self.dropped[topic] += n

    def _run(self) -> None:
        last_flush = time.monotonic()
        done = False
        while not done:
            with self._cond:
                if not self._closing:
                    self._cond.wait(timeout=WAKE_PERIOD)
                batch = list(self._queue)
                self._queue.clear()
                self._queued_bytes = 0
                done = self._closing
            with self._io:
                handed = 0
                try:
                    for topic, stamp, data in batch:
                        # Counted as it goes to rosbags: if the chunk then fails to
                        # reach the disk, _fail takes the chunk's messages back.
                        handed += 1
                        self.written += 1
                        self.written_bytes += len(data)
                        self._writer.write(self._connections[topic], stamp, data)
                        self._times[topic].append(message_time(self._stamp_readers[topic], data, stamp))
                    if done or time.monotonic() - last_flush >= self.config.flush_period:
                        self._flush()
                        last_flush = time.monotonic()
                except OSError as e:     # disk full, I/O error: the bag stays incomplete
                    self._fail(f'write failed: {e.strerror or e}', batch[handed:])
                    return

    def _fail(self, error: str, unwritten) -> None:
        with self._cond:
            self.error = error
            for topic, _, _ in [*unwritten, *self._queue]:
                self.dropped[topic] += 1
            self._queue.clear()
            # The MCAP chunk that did not reach the disk is lost as well.
            topics = {c.id: t for t, c in self._connections.items()}
            for cid, msgs in self._writer.storage.chunk.msgs.items():
                self.dropped[topics[cid]] += len(msgs)
                self.written -= len(msgs)

    def _flush(self) -> None:
        # rosbags closes MCAP chunks at 1 MiB; low-rate topics would sit in
        # memory far longer, so close the pending chunk on time as well.
        storage = self._writer.storage
        if storage is not None and storage.chunk.bio.tell():
            storage.close_chunk()
        if storage is not None:
            storage.bio.flush()

    def close(self, success: str, end_reason: str, stop_stamp: float,
              finished: bool = True) -> EpisodeSummary:
        """Finish the bag: drain the queue, write the index and metadata.

        ``finished=False`` closes a bag whose episode did not run to its end
        (the recorder was interrupted): readable, but marked incomplete.
        """
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        info = self.info
        info.stop_stamp = stop_stamp
        info.success = success
        info.end_reason = end_reason if not self.error else f'{self.error}; {end_reason}'
        info.messages = self.written
        info.dropped = sum(self.dropped.values())
        info.dropped_by_topic = dict(self.dropped)
        info.topic_stats = {topic: stream_timing(times) for topic, times in self._times.items() if times}
        info.status = COMPLETE if finished and not self.error else INCOMPLETE
        for key, value in info.custom_data().items():
            self._writer.set_custom_data(key, value)
        try:
            self._writer.close()
        except OSError as e:
            self.error = self.error or f'closing the bag failed: {e.strerror or e}'
            info.status = INCOMPLETE
            try:
                self._writer.abort()
                write_placeholder_metadata(self.bag, f'{self.bag.name}.mcap', info)
            except OSError:
                pass       # the placeholder from the start still says incomplete
        return EpisodeSummary(self.bag, info.complete, self.written, info.dropped,
                              self.written_bytes, stop_stamp - info.start_stamp, self.error)
