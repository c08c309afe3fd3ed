"""What the viewer shows, as Rerun entities: one rule for a live graph and a recording.

ROS-agnostic: every method takes a message by its fields (an rclpy message, or
one decoded from a bag by rosbags, alike) and the time it belongs to, in seconds
of the graph's clock. The entities:

* ``robot/...``               the robot model from ``robot_description`` (URDF,
                              visual meshes), each link in its TF frame;
* ``tf/<child frame>``         every /tf and /tf_static transform, as a named
                              Rerun frame relation (parent_frame -> child_frame);
                              Rerun poses the model with them as RViz does;
* ``scene/<ns>/<id>``          scene markers (the task's objects), in their frames;
* ``cameras/<name>``           each camera's images (JPEG-compressed: the web
                              viewer keeps the recording in its memory);
* ``joints/<joint>/measured`` and ``joints/<joint>/commanded``: time series of
                              joint_states against the commanded targets, rad;
* ``task/success``             and ``task/status`` (a text log of changes);
* ``log/<node>``               the nodes' log lines (/rosout): policy runs, verdicts.

The timeline ``time`` is the graph's clock: a duration from the sim's start
under sim time, a timestamp on a wall-clock graph (hardware).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import os
from pathlib import Path
import socket
import tempfile
import time

import numpy as np
import rerun as rr
import rerun.blueprint as rrb

from robosandbox_control.arm_interface import to_seconds
from robosandbox_control.messages import image_array

TIMELINE = 'time'
FIXED_FRAME = 'world'
ROBOT = 'robot'
# Above this stamp (s), a clock is the wall clock (2001-09-09): below, sim time.
WALL_CLOCK_SINCE = 1e9
# JPEG quality of logged camera images: a 320x240 frame takes ~15 kB, not 230 kB.
JPEG_QUALITY = 80
LOG_LEVELS = {10: rr.TextLogLevel.DEBUG, 20: rr.TextLogLevel.INFO, 30: rr.TextLogLevel.WARN,
              40: rr.TextLogLevel.ERROR, 50: rr.TextLogLevel.CRITICAL}


def graph_time(seconds: float, now: float) -> float:
    """When a stamp ``seconds`` is shown on a graph whose clock reads ``now``: the stamp
    itself, or ``now`` for a zero stamp ("now") and for a stamp on the other clock (a
    client without use_sim_time stamping wall time on a sim graph, or the reverse),
    which the timeline could not place among the graph's times."""
    if seconds <= 0 or (seconds >= WALL_CLOCK_SINCE) != (now >= WALL_CLOCK_SINCE):
        return now
    return seconds


class SceneError(ValueError):
    """A message the viewer cannot show (an image encoding it does not know)."""


def entity_name(name: str) -> str:
    """A frame, joint or camera name as one Rerun entity path part."""
    return rr.escape_entity_path_part(name.strip('/') or '_')


def blueprint(cameras: Iterable[str] = (), joints: Iterable[str] = (), robot: str = '') -> rrb.Blueprint:
    """The layout: the 3D scene (the robot's visual meshes, not its collision ones)
    beside the cameras, the joint series below."""
    hidden = [f'- /{ROBOT}/{robot}/collision_geometries/**'] if robot else []
    scene = rrb.Spatial3DView(name='scene', origin='/',
                              contents=['+ /**', *hidden, '- /cameras/**', '- /joints/**', '- /task/**', '- /log/**'])
    cams = [rrb.Spatial2DView(name=c, origin=f'/cameras/{entity_name(c)}') for c in cameras]
    series = [rrb.TimeSeriesView(name=j, origin=f'/joints/{entity_name(j)}') for j in joints]
    top = rrb.Horizontal(scene, rrb.Vertical(*cams), column_shares=[2, 1]) if cams else scene
    bottom = [rrb.Grid(*series)] if series else []
    return rrb.Blueprint(rrb.Vertical(top, *bottom, rrb.TextLogView(name='log', origin='/log'),
                                      row_shares=[3, 2, 1] if bottom else [4, 1]),
                         collapse_panels=True)


class _Streams:
    """Several recording streams (a served one, a file) driven as one."""

    def __init__(self, streams: tuple[rr.RecordingStream, ...]):
        self.streams = streams

    def __getattr__(self, name: str):
        def each(*args, **kwargs):
            for stream in self.streams:
                getattr(stream, name)(*args, **kwargs)
        return each


class Scene:
    """Logs the messages of one graph (live or recorded) to Rerun recordings: each
    message is converted once and logged to every stream given."""

    def __init__(self, *recordings: rr.RecordingStream):
        if not recordings:
            raise ValueError('Scene needs at least one recording stream')
        self.rec = _Streams(recordings)
        self.cameras: list[str] = []
        self.joints: list[str] = []
        self._status: tuple | None = None
        self._urdf_dir = tempfile.TemporaryDirectory(prefix='robosandbox_view_')
        self._description: str | None = None
        self._tree = None
        self._frames: set[str] = set()      # child frames a transform has placed
        # The 3D view's root is the scene's fixed frame, REP-105's world.
        self.rec.log('/', rr.ViewCoordinates.RIGHT_HAND_Z_UP, rr.CoordinateFrame(FIXED_FRAME), static=True)

    def close(self) -> None:
        self._urdf_dir.cleanup()

    def _at(self, seconds: float) -> None:
        if seconds >= WALL_CLOCK_SINCE:
            self.rec.set_time(TIMELINE, timestamp=seconds)
        else:
            self.rec.set_time(TIMELINE, duration=seconds)

    def _layout_changed(self) -> None:
        robot = self._tree.name if self._tree is not None else ''
        self.rec.send_blueprint(blueprint(self.cameras, self.joints, robot), make_active=True)

    # --- the robot and the frames ---------------------------------------------

    def robot_description(self, urdf: str) -> None:
        """The robot model (static): its visual meshes, each in its link's frame."""
        if urdf == self._description:
            return
        self._description = urdf
        path = Path(self._urdf_dir.name) / 'robot_description.urdf'
        path.write_text(urdf)
        self._tree = rr.urdf.UrdfTree.from_file_path(path, entity_path_prefix=ROBOT)
        for stream in self.rec.streams:
            self._tree.log_urdf_to_recording(stream)
        root = self._tree.root_link().name
        if root not in self._frames:
            # Until a backend says where the robot stands (the sim's world -> base_link),
            # at the origin of the scene's fixed frame: a hardware graph has no world.
            self.rec.log(f'tf/{entity_name(root)}', rr.Transform3D(parent_frame=FIXED_FRAME, child_frame=root),
                         static=True)
        self._layout_changed()

    def robot_pose(self, names, positions, seconds: float) -> None:
        """The robot posed from joint positions (rad) through the model's kinematics: the
        frames a backend's /tf carries, for a recording that has joint states only."""
        if self._tree is None:
            raise SceneError('robot_pose needs the robot description first')
        self._at(seconds)
        for name, value in zip(names, positions):
            joint = self._tree.get_joint_by_name(name)
            if joint is not None and joint.joint_type != 'fixed':
                self.rec.log(f'tf/{entity_name(joint.child_link)}',
                             joint.compute_transform(float(value), clamp=False))

    def transforms(self, msg, static: bool, seconds: float | None = None) -> None:
        """A tf2_msgs/TFMessage: each transform a named frame relation, at its stamp
        (or at ``seconds``, given)."""
        for t in msg.transforms:
            self._frames.add(t.child_frame_id)
            if not static:
                self._at(to_seconds(t.header.stamp) if seconds is None else seconds)
            tr, q = t.transform.translation, t.transform.rotation
            self.rec.log(f'tf/{entity_name(t.child_frame_id)}',
                         rr.Transform3D(translation=[tr.x, tr.y, tr.z], quaternion=[q.x, q.y, q.z, q.w],
                                        parent_frame=t.header.frame_id, child_frame=t.child_frame_id),
                         static=static)

    def markers(self, msg) -> None:
        """A visualization_msgs/MarkerArray of boxes, spheres and cylinders (static: the
        sim's markers are locked to their frames)."""
        shapes = {1: 'box', 2: 'sphere', 3: 'cylinder'}
        for m in msg.markers:
            path = f'scene/{entity_name(m.ns)}/{m.id}'
            if m.action == 3:                                    # DELETEALL
                self.rec.log('scene', rr.Clear(recursive=True), static=True)
            elif m.action == 2 or m.type not in shapes:         # DELETE, or not a shape we draw
                self.rec.log(path, rr.Clear(recursive=True), static=True)
            else:
                p, q, s, c = m.pose.position, m.pose.orientation, m.scale, m.color
                self.shape(path, shapes[m.type], (s.x, s.y, s.z), (c.r, c.g, c.b, c.a), m.header.frame_id,
                           (p.x, p.y, p.z), (q.x, q.y, q.z, q.w))

    def shape(self, path: str, kind: str, size, rgba, frame: str, position=(0.0, 0.0, 0.0),
              quaternion_xyzw=(0.0, 0.0, 0.0, 1.0)) -> None:
        """A box, sphere or cylinder of full extents ``size`` (m, as a Marker's scale)
        fixed in ``frame`` (static)."""
        pose = dict(centers=[position], quaternions=[quaternion_xyzw], colors=[[int(255 * v) for v in rgba]])
        half = [[v / 2 for v in size]]
        if kind == 'box':
            drawn = rr.Boxes3D(half_sizes=half, fill_mode='solid', **pose)
        elif kind == 'sphere':
            drawn = rr.Ellipsoids3D(half_sizes=half, fill_mode='solid', **pose)
        elif kind == 'cylinder':
            drawn = rr.Cylinders3D(lengths=[size[2]], radii=[size[0] / 2], fill_mode='solid', **pose)
        else:
            raise SceneError(f'shape {kind!r} is not drawn (box, sphere, cylinder)')
        self.rec.log(path, drawn, rr.CoordinateFrame(frame), static=True)

    # --- sensors and commands -------------------------------------------------

    def image(self, camera: str, msg, seconds: float) -> None:
        """A sensor_msgs/Image of ``camera``."""
        try:
            pixels = image_array(msg)
        except ValueError as e:
            raise SceneError(str(e)) from None
        self.camera_array(camera, pixels, seconds)

    def camera_array(self, camera: str, image: np.ndarray, seconds: float) -> None:
        """An (h, w, 3|4) RGB(A) or (h, w) mono uint8 image of ``camera``."""
        if camera not in self.cameras:
            self.cameras.append(camera)
            self._layout_changed()
        self._at(seconds)
        logged = rr.Image(image, color_model={1: 'L', 3: 'RGB', 4: 'RGBA'}[1 if image.ndim == 2 else image.shape[2]])
        if image.ndim == 2 or image.shape[2] == 3:
            logged = logged.compress(jpeg_quality=JPEG_QUALITY)
        self.rec.log(f'cameras/{entity_name(camera)}', logged)

    def joint_values(self, names, positions, seconds: float, kind: str) -> None:
        """Joint positions (rad) as one point of each joint's ``kind`` series
        (measured, commanded)."""
        new = [n for n in names if n not in self.joints]
        if new:
            self.joints.extend(new)
            self._layout_changed()
        self._at(seconds)
        for name, value in zip(names, positions):
            self.rec.log(f'joints/{entity_name(name)}/{kind}', rr.Scalars(float(value)))

    def task_status(self, msg, seconds: float, object_frames: bool = False) -> None:
        """A TaskStatus; with ``object_frames``, its object poses also as the objects'
        frames (what the sim's /tf carries, for a recording without /tf)."""
        self._at(seconds)
        if object_frames:
            for name, pose in zip(msg.object_names, msg.object_poses):
                p, q = pose.position, pose.orientation
                self.rec.log(f'tf/{entity_name(name)}', rr.Transform3D(
                    translation=[p.x, p.y, p.z], quaternion=[q.x, q.y, q.z, q.w],
                    parent_frame=msg.header.frame_id or FIXED_FRAME, child_frame=name))
        self.rec.log('task/success', rr.Scalars(1.0 if msg.success else 0.0))
        state = (msg.task, msg.seed, msg.success)
        if state != self._status:
            self._status = state
            self.rec.log('task/status', rr.TextLog(
                f'{msg.task} seed {msg.seed}: {"success" if msg.success else "running"}',
                level=rr.TextLogLevel.INFO))

    def log_line(self, node: str, level: int, text: str, seconds: float) -> None:
        self._at(seconds)
        self.rec.log(f'log/{entity_name(node)}', rr.TextLog(text, level=LOG_LEVELS.get(level, rr.TextLogLevel.INFO)))


@dataclass
class View:
    """Where one view goes: a served recording stream (``url``: its web viewer), a
    .rrd file, or both: two streams of one recording id (Rerun replaces a served
    stream's sinks, and its server with them, when a file sink is added)."""

    served: rr.RecordingStream | None = None
    saved: rr.RecordingStream | None = None
    url: str = ''

    @property
    def streams(self) -> list[rr.RecordingStream]:
        return [s for s in (self.served, self.saved) if s is not None]

    def finish_file(self) -> None:
        """Complete the .rrd file (Rerun writes its footer on disconnect)."""
        if self.saved is not None:
            self.saved.flush()
            self.saved.disconnect()

    def close(self) -> None:
        self.finish_file()
        if self.served is not None:
            self.served.flush()
            self.served.disconnect()


def _check_free(port: int, what: str) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)     # as a server binds
        try:
            probe.bind(('', port))
        except OSError as e:
            raise OSError(f'port {port}, for {what}, is in use ({e.strerror}): another viewer may hold it; '
                          'give another port') from e


def open_view(application: str, web_port: int, grpc_port: int, save: str = '',
              memory_limit: str = '1GiB') -> View:
    """A view served on localhost (``web_port`` 0: not served) and/or saved to ``save``."""
    view = View()
    recording_id = f'{application}-{os.getpid()}-{int(time.time())}'
    if web_port:
        # Rerun's gRPC server fails on a port in use in a thread of its own, later, with
        # nothing raised here: both ports are tried first.
        for port, what in ((grpc_port, 'the recording'), (web_port, 'the page')):
            _check_free(port, what)
        view.served = rr.RecordingStream(application, recording_id=recording_id)
        view.served.serve_grpc(grpc_port=grpc_port, server_memory_limit=memory_limit)
        rr.serve_web_viewer(web_port=web_port, open_browser=False)
        view.url = f'http://localhost:{web_port}/?url=rerun%2Bhttp://localhost:{grpc_port}/proxy'
    if save:
        Path(save).parent.mkdir(parents=True, exist_ok=True)     # as a recorder's runs_dir is
        view.saved = rr.RecordingStream(application, recording_id=recording_id)
        view.saved.save(save)
    if not view.streams:
        raise ValueError('nothing to show to: give a web port, a file to save, or both')
    return view
