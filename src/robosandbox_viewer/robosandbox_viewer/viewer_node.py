"""``viewer``: the live graph in Rerun, served to a browser on localhost.

rclpy glue around :class:`robosandbox_viewer.scene.Scene`. It subscribes to what a
backend, a policy and a teleop publish (robot_description, /tf, /tf_static,
scene_markers, joint_states, joint_trajectory, policy/action, teleop/action,
task_status, every ``cameras/<name>/image_raw`` as it appears, /rosout) and logs
them to Rerun, which serves its web viewer (``web_port``) and, with ``save``,
writes a .rrd file.

It must not slow the graph it watches: streams are subscribed best-effort with a
depth of one (ten for /tf, whose messages carry different frames), so a busy
viewer drops old messages instead of holding up a reliable publisher or
queueing, and each stream is logged at most ``max_rate`` times a second; the
latched topics (robot_description, /tf_static, scene_markers) are read as latched.
"""

from __future__ import annotations

from dataclasses import dataclass

from rcl_interfaces.msg import Log
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from robosandbox_control.arm_interface import to_seconds
from robosandbox_control.parameters import declare, parameter, watch
from robosandbox_control.qos import LATCHED_QOS, LATEST_QOS
from robosandbox_control.spinning import run_node
from robosandbox_msgs.msg import TaskStatus
from robosandbox_viewer.scene import graph_time, open_view, Scene, SceneError
ACTION_TOPICS = ('policy/action', 'teleop/action')
CAMERA_SCAN_PERIOD = 1.0      # s between looks for new cameras


@dataclass
class ViewerParameters:
    """Parameters of ``viewer``; fixed once it runs."""

    web_port: int = parameter(9090, "Port of Rerun's web viewer on localhost (0: none, only save).",
                              read_only=True, range=(0, 65535))
    grpc_port: int = parameter(9876, 'Port on which the web viewer reads the recording (Rerun gRPC).',
                               read_only=True, range=(1, 65535))
    save: str = parameter('', 'A .rrd file to write the recording to as well (empty: none).', read_only=True)
    memory_limit: str = parameter('1GiB', 'What the served recording may hold before its oldest data '
                                          'is dropped (Rerun size, e.g. 512MiB).', read_only=True)
    max_rate: float = parameter(30.0, 'Most updates per second (graph time) logged of each stream: joint '
                                      'states, targets, each TF frame, each camera (0: every message).',
                                range=(0.0, 1000.0))


class ViewerNode(Node):

    def __init__(self, **kwargs):
        super().__init__('viewer', **kwargs)
        # What destroy_node releases, set before anything can fail (a start cut short).
        self.view = self.scene = None
        p = self.p = declare(self, ViewerParameters)
        watch(self, p)              # max_rate is read at every message
        self.view = open_view('robosandbox', p.web_port, p.grpc_port, p.save, p.memory_limit)
        self.url = self.view.url
        self.scene = Scene(*self.view.streams)
        self.create_subscription(String, 'robot_description', self._description, LATCHED_QOS)
        self.create_subscription(TFMessage, '/tf_static', lambda m: self.scene.transforms(m, static=True),
                                 LATCHED_QOS)
        self.create_subscription(TFMessage, '/tf', self._tf, QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
        self.create_subscription(MarkerArray, 'scene_markers', self.scene.markers, LATCHED_QOS)
        self.create_subscription(JointState, 'joint_states', self._measured, LATEST_QOS)
        self.create_subscription(JointTrajectory, 'joint_trajectory', self._commanded, LATEST_QOS)
        for topic in ACTION_TOPICS:
            self.create_subscription(JointState, topic, self._action, LATEST_QOS)
        self.create_subscription(TaskStatus, 'task_status', self._status, LATEST_QOS)
        self.create_subscription(Log, '/rosout', self._log, QoSProfile(depth=100))
        self._last: dict[str, float] = {}         # stream -> graph time last logged
        self._cameras: set[str] = set()
        self._scan_cameras()
        self.create_timer(CAMERA_SCAN_PERIOD, self._scan_cameras)
        if self.url:
            self.get_logger().info(f'Rerun web viewer: {self.url}')
        if p.save:
            self.get_logger().info(f'saving the recording to {p.save}')

    def destroy_node(self):
        if self.scene is not None:
            self.scene.close()
        if self.view is not None:
            self.view.close()
        return super().destroy_node()

    def _due(self, stream: str, seconds: float) -> bool:
        """Whether ``stream`` is due an update at ``seconds``: at most ``max_rate`` a
        second are logged; a viewer shows no more, and each costs its CPU."""
        last = self._last.get(stream)
        if self.p.max_rate > 0 and last is not None and 0 <= seconds - last < 1.0 / self.p.max_rate:
            return False
        self._last[stream] = seconds
        return True

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _time(self, stamp) -> float:
        """A message's time on this graph's clock (``scene.graph_time``)."""
        return graph_time(to_seconds(stamp), self._now())

    def _scan_cameras(self) -> None:
        prefix = self.get_namespace().rstrip('/') + '/cameras/'
        for topic, types in self.get_topic_names_and_types():
            if topic.startswith(prefix) and topic.endswith('/image_raw') and 'sensor_msgs/msg/Image' in types:
                camera = topic[len(prefix):-len('/image_raw')]
                if camera and camera not in self._cameras:
                    self._cameras.add(camera)
                    self.create_subscription(Image, topic, lambda m, c=camera: self._image(c, m), LATEST_QOS)

    def _description(self, msg: String) -> None:
        try:
            self.scene.robot_description(msg.data)
        except Exception as e:      # Rerun's URDF loader: a model it cannot read is shown without it
            self.get_logger().error(f'robot_description not shown: {e}')

    def _tf(self, msg: TFMessage) -> None:
        # Decimated per frame: a message may carry the robot's links or the objects alone.
        # Each transform at its own stamp: one message may gather several publishers'.
        due: dict[float, list] = {}
        for transform in msg.transforms:
            seconds = self._time(transform.header.stamp)
            if self._due(f'tf:{transform.child_frame_id}', seconds):
                due.setdefault(seconds, []).append(transform)
        for seconds, transforms in due.items():
            self.scene.transforms(TFMessage(transforms=transforms), static=False, seconds=seconds)

    def _image(self, camera: str, msg: Image) -> None:
        seconds = self._time(msg.header.stamp)
        if not self._due(f'camera:{camera}', seconds):
            return
        try:
            self.scene.image(camera, msg, seconds)
        except SceneError as e:
            self.get_logger().warning(f'cameras/{camera}: {e}', throttle_duration_sec=10.0)

    def _measured(self, msg: JointState) -> None:
        seconds = self._time(msg.header.stamp)
        if self._due('measured', seconds):
            self.scene.joint_values(msg.name, msg.position, seconds, 'measured')

    def _commanded(self, msg: JointTrajectory) -> None:
        seconds = self._time(msg.header.stamp)
        if msg.points and self._due('commanded', seconds):
            self.scene.joint_values(msg.joint_names, msg.points[0].positions, seconds, 'commanded')

    def _action(self, msg: JointState) -> None:
        seconds = self._time(msg.header.stamp)
        if self._due('action', seconds):
            self.scene.joint_values(msg.name, msg.position, seconds, 'action')

    def _status(self, msg: TaskStatus) -> None:
        self.scene.task_status(msg, self._time(msg.header.stamp))

    def _log(self, msg: Log) -> None:
        # A log line's stamp is its node's system time even under use_sim_time:
        # shown when it arrived, on the graph's clock with everything else.
        if msg.name != self.get_name():
            self.scene.log_line(msg.name, msg.level, msg.msg, self._now())


def main(args=None) -> int:
    return run_node('viewer', ViewerNode, (ValueError, RuntimeError, OSError), args=args)


if __name__ == '__main__':
    raise SystemExit(main())
