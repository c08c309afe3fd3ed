"""``foxglove_bridge``: the graph's topics on a Foxglove WebSocket, for Foxglove users.

Every topic of the graph (found as it appears, ``topics`` to choose) is forwarded
as it is on the wire: CDR bytes, with the ``ros2msg`` definition Foxglove decodes
them by (from the ROS 2 Kilted type store of rosbags, plus robosandbox_msgs). No
message is deserialised here. Foxglove connects to ``ws://localhost:<port>``
(the foxglove-sdk server, LeRobot's ``viz`` extra), as to ROS's foxglove_bridge.

Subscriptions are best-effort with a depth of one, as the viewer's, except the
latched topics (robot_description, /tf_static, scene_markers), read as latched.
"""

from __future__ import annotations

from dataclasses import dataclass

from rclpy.node import Node

from robosandbox_control.messages import message_class
from robosandbox_control.parameters import declare, parameter
from robosandbox_control.qos import LATCHED_QOS, LATEST_QOS
from robosandbox_control.spinning import run_node

LATCHED_TOPICS = ('robot_description', '/tf_static', 'scene_markers')
SCAN_PERIOD = 1.0      # s between looks for new topics


@dataclass
class FoxgloveParameters:
    """Parameters of ``foxglove_bridge``; fixed once it runs."""

    port: int = parameter(8765, 'Port of the Foxglove WebSocket server on localhost.', read_only=True,
                          range=(1, 65535))
    host: str = parameter('127.0.0.1', 'Address the server binds (0.0.0.0: every interface).', read_only=True)
    topics: list = parameter(['.*'], 'Topics forwarded: regular expressions matched against the whole '
                                     'topic name.', read_only=True)


def ros2msg_definition(msgtype: str) -> str | None:
    """The ros2msg text (the type and, after ``MSG:`` separators, every type it uses)
    Foxglove decodes ``msgtype`` by; None if the type is unknown."""
    from rosbags.typesys import TypesysError

    from robosandbox_data.episodes.bag import typestore
    try:
        text, _ = typestore().generate_msgdef(msgtype, ros_version=2)
    except (KeyError, TypesysError):
        return None
    return text


class FoxgloveBridgeNode(Node):

    def __init__(self, **kwargs):
        super().__init__('foxglove_bridge', **kwargs)
        import re

        import foxglove
        self._foxglove = foxglove
        p = self.p = declare(self, FoxgloveParameters)
        self._patterns = [re.compile(t) for t in p.topics]
        self.server = foxglove.start_server(name='robosandbox', host=p.host, port=p.port)
        self._channels: dict[str, object] = {}
        self._latched = {self.resolve_topic_name(t) for t in LATCHED_TOPICS}
        self._scan()
        self.create_timer(SCAN_PERIOD, self._scan)
        self.get_logger().info(f'Foxglove WebSocket: ws://{p.host}:{self.server.port}')

    def destroy_node(self):
        self.server.stop()
        return super().destroy_node()

    def _scan(self) -> None:
        for topic, types in self.get_topic_names_and_types():
            if topic in self._channels or not any(p.fullmatch(topic) for p in self._patterns):
                continue
            msgtype = types[0]
            self._channels[topic] = None            # looked at once, forwarded or not
            definition = ros2msg_definition(msgtype)
            try:
                kind = message_class(msgtype)
            except (ImportError, AttributeError, ValueError):
                kind = None
            if definition is None or kind is None:
                self.get_logger().warning(f'{topic}: type {msgtype} '
                                          f'{"unknown to the bridge" if kind else "not installed"}; not forwarded')
                continue
            channel = self._foxglove.Channel(topic, message_encoding='cdr', schema=self._foxglove.Schema(
                name=msgtype, encoding='ros2msg', data=definition.encode()))
            self._channels[topic] = channel
            self.create_subscription(kind, topic, lambda data, c=channel: c.log(data),
                                     LATCHED_QOS if topic in self._latched else LATEST_QOS, raw=True)


def main(args=None) -> int:
    return run_node('foxglove_bridge', FoxgloveBridgeNode, (ValueError, RuntimeError, OSError), args=args)


if __name__ == '__main__':
    raise SystemExit(main())
