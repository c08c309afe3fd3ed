"""Records episodes as rosbag2 (MCAP) bags: ``recorder/start``, ``recorder/stop``.

Subscriptions are raw (serialized bytes go to the bag as they arrived, nothing
is deserialized) and made as publishers appear, with the publishers'
reliability, as ``ros2 bag record`` does. They live for the whole node, so an
episode starts recording at once. Losses are counted from the publishers'
sequence numbers (transport) and from the writer's bounded queue.

An episode starts only while every required topic flows (``required_topics``
and every camera image): each has a publisher and has not been silent for
more than ``max_silence`` of the graph's time. That time is ``/clock`` where
one runs (a paused or lockstep sim publishes only when it steps, and is then
silent without anything being wrong), else the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
import re
import shutil
import struct
import time

from rclpy.node import Node
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import QoSProfile, ReliabilityPolicy

from robosandbox_control.messages import message_class
from robosandbox_control.parameters import declare, parameter, watch
from robosandbox_control.spinning import init, spin_node
from robosandbox_msgs.srv import StartEpisode, StopEpisode
from robosandbox_data.episodes.bag import EpisodeInfo
from robosandbox_data.episodes.writer import EpisodeWriter, WriterConfig

# How a refused start begins its message: a caller may wait and ask again.
NOT_FLOWING = 'not flowing'
IMAGE = 'sensor_msgs/msg/Image'


@dataclass
class RecorderParameters:
    """Parameters of ``recorder``: what to record is fixed at start; flushing and discovery are live."""

    runs_dir: str = parameter('runs', 'Directory that receives one bag directory per episode.', read_only=True)
    topics: list = parameter(['joint_states', 'joint_trajectory', 'policy/action', 'teleop/action',
                              'leader/joint_states', 'task_status', '/clock'],
                             'Topics to record (relative names resolve in the node namespace).', read_only=True)
    camera_namespace: str = parameter('cameras', "Also record every topic under this namespace (images and "
                                                 "camera_info); '' = none.", read_only=True)
    required_topics: list = parameter(['joint_states'], 'Topics that must flow for an episode to start, besides '
                                      'every camera image under camera_namespace.', read_only=True)
    max_silence: float = parameter(1.0, 'A required topic silent for longer than this (s of /clock where it runs, '
                                        'else of the wall clock) is not flowing.', range=(0.01, 3600.0))
    robot_type: str = parameter('so101_follower', 'Robot type written into each episode (LeRobot robot_type).')
    max_queue_mb: float = parameter(512.0, 'Memory for messages waiting to be written, MB; beyond it they are '
                                           'dropped (and counted). Read at each episode start.',
                                    range=(1.0, 65536.0))
    flush_period: float = parameter(1.0, 'Longest time a written message waits in memory before reaching the '
                                         'file, s. Read at each episode start.', range=(0.01, 60.0))
    discovery_period: float = parameter(0.5, 'How often to look for new publishers of the recorded topics, s.',
                                        read_only=True, range=(0.05, 60.0))


class RecorderNode(Node):

    def __init__(self, **kwargs):
        super().__init__('recorder', **kwargs)
        self.p = declare(self, RecorderParameters)
        watch(self, self.p)         # robot_type and the writer settings are read at each start
        self.runs_dir = Path(self.p.runs_dir).expanduser()
        self.wanted = [self.resolve_topic_name(t) for t in self.p.topics]
        self.required = [self.resolve_topic_name(t) for t in self.p.required_topics]
        self.wanted += [t for t in self.required if t not in self.wanted]
        ns = self.p.camera_namespace
        self.camera_prefix = self.resolve_topic_name(ns).rstrip('/') + '/' if ns else ''
        self._recorded: dict[str, str] = {}        # topic -> message type
        self._last_sequence: dict[tuple, int] = {}      # (topic, publisher gid) -> number
        # Per topic, when it was last heard (or subscribed): (wall s, /clock s or None).
        self._heard: dict[str, tuple[float, float | None]] = {}
        self._graph_clock: float | None = None                # the newest /clock, s
        self.writer: EpisodeWriter | None = None
        self.create_service(StartEpisode, 'recorder/start', self._start)
        self.create_service(StopEpisode, 'recorder/stop', self._stop)
        self.create_timer(self.p.discovery_period, self._discover)

    # Subscriptions --------------------------------------------------------

    def _topics_to_record(self) -> dict[str, str]:
        found = dict((name, types[0]) for name, types in self.get_topic_names_and_types())
        topics = {t: found[t] for t in self.wanted if t in found}
        if self.camera_prefix:
            topics.update({t: ty for t, ty in found.items() if t.startswith(self.camera_prefix)})
        return topics

    def _discover(self) -> None:
        for topic, type_name in self._topics_to_record().items():
            if topic in self._recorded:
                continue
            publishers = self.get_publishers_info_by_topic(topic)
            if not publishers:
                continue
            # A reliable reader cannot match a best-effort writer: offer what
            # every publisher can give.
            reliable = all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                           for p in publishers)
            qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE if reliable
                             else ReliabilityPolicy.BEST_EFFORT)
            try:
                msg_class = message_class(type_name)
            except (ImportError, AttributeError, ValueError):
                self.get_logger().warning(f'not recording {topic}: type {type_name} not installed')
                self._recorded[topic] = ''
                continue
            # No QoS event handlers: each is one more entity the Python executor
            # walks for every message, and the recorder has no use for them.
            self.create_subscription(msg_class, topic, self._callback_for(topic), qos, raw=True,
                                     event_callbacks=SubscriptionEventCallbacks(
                                         use_default_callbacks=False))
            self._recorded[topic] = type_name
            self._heard[topic] = self._now()
            if self.writer is not None:
                self.writer.add_topic(topic, type_name)

    def _now(self) -> tuple[float, float | None]:
        return time.monotonic(), self._graph_clock

    def _callback_for(self, topic: str):
        is_clock = topic == '/clock'

        def callback(data: bytes, info) -> None:
            if is_clock and len(data) >= 12:
                # rosgraph_msgs/Clock in CDR: a 4-byte encapsulation header, then sec, nanosec.
                sec, nanosec = struct.unpack_from('<iI' if data[1] == 1 else '>iI', data, 4)
                self._graph_clock = sec + nanosec * 1e-9
            self._heard[topic] = self._now()
            seq = info.get('publication_sequence_number')
            lost = 0
            if seq is not None:
                key = (topic, bytes(info['publisher_gid']['data']))
                last = self._last_sequence.get(key)
                self._last_sequence[key] = seq
                if last is not None and seq > last + 1:
                    lost = seq - last - 1
            writer = self.writer
            if writer is not None:
                if lost:
                    writer.count_lost(topic, lost)
                writer.put(topic, self.get_clock().now().nanoseconds, data)
        return callback

    # Episodes -------------------------------------------------------------

    def _start(self, request: StartEpisode.Request, response: StartEpisode.Response):
        if self.writer is not None:
            response.message = f'already recording {self.writer.bag}; stop it first'
            return response
        name = request.name or '_'.join(filter(None, (
            datetime.now().strftime('%Y%m%d-%H%M%S-%f')[:-3],
            re.sub(r'[^A-Za-z0-9_.-]+', '-', request.task),
            f'seed{request.seed}' if request.seed >= 0 else '')))
        bag = self.runs_dir / name
        if bag.exists() or '/' in name:
            response.message = f'{bag} exists or is not a plain name'
            return response
        self._discover()
        if stalled := self._not_flowing():
            response.message = (f'{NOT_FLOWING}: {"; ".join(stalled)}; not recording (an episode starts only '
                                'while every required topic flows: required_topics, max_silence)')
            self.get_logger().warning(response.message, throttle_duration_sec=5.0)
            return response
        # Count gaps between this episode's own messages only: the backlog of
        # messages that queued up while the last episode was being closed is
        # not this episode's loss.
        self._last_sequence.clear()
        info = EpisodeInfo(task=request.task, instruction=request.instruction, seed=request.seed,
                           policy=request.policy, robot_type=self.p.robot_type,
                           start_stamp=self.get_clock().now().nanoseconds * 1e-9)
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            config = WriterConfig(max_queue_bytes=int(self.p.max_queue_mb * 2**20),
                                  flush_period=self.p.flush_period)
            writer = EpisodeWriter(bag, info, config)
        except OSError as e:
            response.message = f'cannot create {bag}: {e}'
            return response
        for topic, type_name in self._recorded.items():
            if type_name:
                writer.add_topic(topic, type_name)
        self.writer = writer
        missing = [t for t in self.wanted if t not in self._recorded]
        response.success, response.bag_path = True, str(bag)
        response.message = f'recording {len(writer.topics)} topics' + (
            f'; no publisher yet on {", ".join(missing)}' if missing else '')
        self.get_logger().info(f'{bag}: {response.message}')
        return response

    def _not_flowing(self) -> list[str]:
        """Each required topic that does not flow now, with why."""
        cameras = [t for t, ty in self._recorded.items()
                   if ty == IMAGE and self.camera_prefix and t.startswith(self.camera_prefix)]
        wall, clock = self._now()
        # Sim time where a /clock runs (none heard yet: none has passed), else wall time.
        sim_time = bool(self._recorded.get('/clock')) and self.count_publishers('/clock') > 0
        out = []
        for topic in dict.fromkeys(self.required + cameras):
            if not self.count_publishers(topic):
                out.append(f'{topic} has no publisher')
                continue
            heard_wall, heard_clock = self._heard.get(topic, (wall, clock))
            silence = (clock or 0.0) - (heard_clock or 0.0) if sim_time else wall - heard_wall
            if silence > self.p.max_silence:
                out.append(f'{topic} silent for {silence:.2f} s')
        return out

    def _stop(self, request: StopEpisode.Request, response: StopEpisode.Response):
        if self.writer is None:
            response.message = 'no episode is being recorded'
            return response
        success = ('true' if request.success else 'false') if request.success_known else 'unknown'
        summary = self.finish(success, request.end_reason or 'stopped')
        response.stopped = True
        response.bag_path = str(summary.bag)
        response.complete = summary.complete
        response.messages = summary.messages
        response.dropped = summary.dropped
        response.duration = summary.duration
        response.message = summary.error or 'closed'
        if request.discard:
            shutil.rmtree(summary.bag, ignore_errors=True)
            response.message = 'discarded' if not summary.bag.exists() else f'could not delete {summary.bag}'
            self.get_logger().info(f'{summary.bag}: {response.message}')
        return response

    def finish(self, success: str, end_reason: str, finished: bool = True):
        writer, self.writer = self.writer, None
        stop = self.get_clock().now().nanoseconds * 1e-9
        summary = writer.close(success, end_reason, stop, finished=finished)
        line = (f'{summary.bag}: {"complete" if summary.complete else "INCOMPLETE"}, '
                f'{summary.messages} messages, {summary.bytes / 2**20:.1f} MB, '
                f'{summary.dropped} dropped' + (f' ({summary.error})' if summary.error else ''))
        # One call site per severity: rclpy refuses a second severity at a call site
        # (ValueError), which a Ctrl-C after a complete episode would hit.
        if summary.complete:
            self.get_logger().info(line)
        else:
            self.get_logger().error(line)
        return summary

    def destroy_node(self) -> None:
        if self.writer is not None:      # interrupted mid-episode
            self.finish('unknown', 'the recorder was shut down mid-episode', finished=False)
        super().destroy_node()


def main(args=None) -> int:
    init(args)
    return spin_node(RecorderNode())


if __name__ == '__main__':
    raise SystemExit(main())
