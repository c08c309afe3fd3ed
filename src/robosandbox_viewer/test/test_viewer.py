"""The viewer: what it logs from a live graph, an episode bag and a dataset, and
what a browser shows of it.

The live run is the real bringup (``robosandbox launch sim_record viewer:=true``:
sim, expert, recorder, episode runner and viewer as processes); its bag and its
export then go through ``robosandbox view`` and LeRobot's ``lerobot-dataset-viz``.
The browser is Debian's headless Chromium driven by Playwright.
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from types import SimpleNamespace as Msg

import numpy as np
import pytest
import rerun as rr

from robosandbox_cli.processes import free_port
from robosandbox_control.robot_state import resolved_urdf
from robosandbox_description.robot import load_robot
from robosandbox_viewer.scene import graph_time, open_view, Scene, SceneError

ROBOSANDBOX = [sys.executable, '-m', 'robosandbox_cli.main']
ROBOT = load_robot('so101')
MOVING_LINKS = {'shoulder_link', 'upper_arm_link', 'lower_arm_link', 'wrist_link', 'gripper_link',
                'moving_jaw_so101_v1_link'}


def entity_paths(rrd: Path) -> set[str]:
    schema = rr.experimental.RrdReader(rrd).store().schema()
    return {column.entity_path for column in schema.component_columns()}



def stamp(seconds: float):
    return Msg(sec=int(seconds), nanosec=int(round((seconds % 1) * 1e9)))


# --- the scene, in-process ---------------------------------------------------

def test_the_scene_logs_each_kind_of_message_to_its_entity(tmp_path):
    rrd = tmp_path / 'views' / 'scene.rrd'          # its folder is made, as a recorder's runs_dir is
    view = open_view('robosandbox_test', web_port=0, grpc_port=1, save=str(rrd))
    assert view.url == ''
    scene = Scene(*view.streams)
    scene.robot_description(resolved_urdf(ROBOT.urdf_path))
    tf = Msg(header=Msg(frame_id='base_link', stamp=stamp(1.5)), child_frame_id='shoulder_link',
             transform=Msg(translation=Msg(x=0.0, y=0.0, z=0.1), rotation=Msg(x=0.0, y=0.0, z=0.0, w=1.0)))
    scene.transforms(Msg(transforms=[tf]), static=False)
    marker = Msg(ns='objects', id=0, type=1, action=0, header=Msg(frame_id='cube'),
                 pose=Msg(position=Msg(x=0.0, y=0.0, z=0.0), orientation=Msg(x=0.0, y=0.0, z=0.0, w=1.0)),
                 scale=Msg(x=0.03, y=0.03, z=0.03), color=Msg(r=0.8, g=0.2, b=0.2, a=1.0))
    scene.markers(Msg(markers=[marker]))
    image = Msg(height=4, width=6, step=18, encoding='rgb8', data=bytes(range(72)))
    scene.image('front', image, 1.5)
    scene.joint_values(['shoulder_pan', 'gripper'], [0.1, 0.5], 1.5, 'measured')
    scene.joint_values(['shoulder_pan', 'gripper'], [0.2, 0.6], 1.5, 'commanded')
    scene.task_status(Msg(task='pick_cube', seed=3, success=True, header=Msg(frame_id='world'),
                          object_names=['cube'], object_poses=[]), 1.6)
    scene.log_line('policy', 20, 'run started', 1.6)
    with pytest.raises(SceneError, match="encoding '16UC1'"):
        scene.image('depth', Msg(height=1, width=1, step=2, encoding='16UC1', data=b'\0\0'), 1.7)
    scene.close()
    view.close()
    paths = entity_paths(rrd)
    assert {'/tf/shoulder_link', '/scene/objects/0', '/cameras/front', '/joints/shoulder_pan/measured',
            '/joints/gripper/commanded', '/task/success', '/task/status', '/log/policy'} <= paths
    assert any(p.startswith('/robot/so101_new_calib/visual_geometries/gripper_link') for p in paths), paths
    # No backend placed the robot's root: it stands at the scene's origin.
    assert '/tf/base_link' in paths


def test_a_stamp_on_another_clock_is_shown_at_the_graphs_now():
    wall = 1.78e9
    # A sim graph (its clock at 12.5 s): a wall-clock stamp from a client without
    # use_sim_time, and a zero stamp, land at now; a sim-time stamp stays.
    assert graph_time(wall, 12.5) == 12.5
    assert graph_time(0.0, 12.5) == 12.5
    assert graph_time(3.0, 12.5) == 3.0
    # A wall-clock graph (hardware): the reverse.
    assert graph_time(3.0, wall) == wall
    assert graph_time(wall - 1.0, wall) == wall - 1.0


def test_each_transform_of_a_tf_message_is_shown_at_its_own_stamp():
    # A /tf message may gather transforms of different stamps (a relay, a bag's merge):
    # all were shown at the first one's.
    from geometry_msgs.msg import TransformStamped
    from rclpy.time import Time
    from tf2_msgs.msg import TFMessage
    from robosandbox_viewer.viewer_node import ViewerNode
    logged = []
    view = Msg(p=Msg(max_rate=30.0), _last={}, _now=lambda: 100.0,
               scene=Msg(transforms=lambda msg, static, seconds: logged.append(
                   (seconds, [t.child_frame_id for t in msg.transforms]))))
    view._due = lambda stream, seconds: ViewerNode._due(view, stream, seconds)
    view._time = lambda s: ViewerNode._time(view, s)

    def transform(child, seconds):
        t = TransformStamped(child_frame_id=child)
        t.header.stamp = Time(nanoseconds=round(seconds * 1e9)).to_msg()
        return t
    ViewerNode._tf(view, TFMessage(transforms=[transform('a', 10.0), transform('b', 12.0),
                                               transform('c', 10.0)]))
    assert sorted(logged) == [(10.0, ['a', 'c']), (12.0, ['b'])]
    ViewerNode._tf(view, TFMessage(transforms=[transform('a', 10.01), transform('b', 12.5)]))
    assert logged[2:] == [(12.5, ['b'])]          # 'a' again within 1/30 s: not due


def test_a_port_in_use_is_refused_by_name(tmp_path, capsys):
    # Rerun's gRPC server failed on a port in use in a thread of its own: `robosandbox view`
    # then hung with nothing served, and ended in a traceback.
    import socket
    from robosandbox_cli.main import main
    bag = tmp_path / 'bag'
    bag.mkdir()
    for held in ('grpc', 'web'):
        ports = {'grpc': free_port(), 'web': free_port()}
        with socket.socket() as holder:
            holder.bind(('127.0.0.1', ports[held]))
            holder.listen()
            what = 'the recording' if held == 'grpc' else 'the page'
            with pytest.raises(OSError, match=f'port {ports[held]}, for {what}, is in use'):
                open_view('robosandbox_test', web_port=ports['web'], grpc_port=ports['grpc'])
            assert main(['view', str(bag), '--web-port', str(ports['web']), '--grpc-port', str(ports['grpc'])]) == 1
            assert f'port {ports[held]}, for {what}, is in use' in capsys.readouterr().err
    assert main(['view', str(bag), '--no-serve']) == 2
    assert '--no-serve without --save' in capsys.readouterr().err


def test_bgr_images_are_shown_as_rgb():
    from robosandbox_control.messages import image_array
    bgr = Msg(height=1, width=2, step=6, encoding='bgr8', data=bytes([1, 2, 3, 4, 5, 6]))
    assert image_array(bgr).tolist() == [[[3, 2, 1], [6, 5, 4]]]


# --- a live run, its bag and its dataset -----------------------------------------

@pytest.fixture(scope='module')
def live(tmp_path_factory):
    """One expert episode recorded with the viewer attached, saving its recording."""
    work = tmp_path_factory.mktemp('live')
    done = subprocess.run(
        ROBOSANDBOX + ['launch', 'sim_record', 'episodes:=1', 'seed:=5', f'runs_dir:={work / "runs"}',
                       'camera_width:=160', 'camera_height:=120', 'viewer:=true', 'viewer_port:=0',
                       f'viewer_save:={work / "live.rrd"}'],
        capture_output=True, text=True, timeout=300, start_new_session=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert 'saving the recording to' in done.stdout, done.stdout[-2000:]
    return work


pytestmark = pytest.mark.nodes     # most of this module starts node processes


def test_a_live_run_is_recorded_with_robot_cube_cameras_and_joint_series(live):
    paths = entity_paths(live / 'live.rrd')
    assert {f'/tf/{link}' for link in MOVING_LINKS} <= paths          # the arm moved, posed by /tf
    assert {'/tf/cube', '/scene/objects/0', '/cameras/front', '/cameras/wrist', '/task/success'} <= paths
    for joint in ROBOT.joints:
        assert {f'/joints/{joint}/measured', f'/joints/{joint}/action'} <= paths, joint
    assert '/log/policy' in paths                                     # run events, from /rosout


def test_an_episode_bag_is_shown_as_the_live_run_was(live, tmp_path):
    bag = next((live / 'runs').iterdir())
    out = subprocess.run(ROBOSANDBOX + ['view', str(bag), '--save', str(tmp_path / 'bag.rrd'), '--no-serve'],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert re.search(r'\d+ messages', out.stdout)
    paths = entity_paths(tmp_path / 'bag.rrd')
    # The bag has no /tf: the links are posed from its joint_states, the cube from its task_status.
    assert {f'/tf/{link}' for link in MOVING_LINKS} | {'/tf/cube', '/scene/objects/0'} <= paths
    assert {'/cameras/front', '/cameras/wrist', '/joints/wrist_flex/measured', '/joints/wrist_flex/action'} <= paths


@pytest.fixture(scope='module')
def dataset(live, tmp_path_factory):
    root = tmp_path_factory.mktemp('datasets') / 'viewed'
    out = subprocess.run(ROBOSANDBOX + ['export-lerobot', str(live / 'runs'), str(root), '--no-progress'],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return root


def test_a_dataset_episode_is_shown_through_lerobots_dataset(dataset, tmp_path):
    out = subprocess.run(ROBOSANDBOX + ['view', f'{dataset}#0', '--save', str(tmp_path / 'ds.rrd'), '--no-serve'],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    frames = int(re.search(r'episode 0: (\d+) frames', out.stdout).group(1))
    assert frames > 30
    paths = entity_paths(tmp_path / 'ds.rrd')
    assert {f'/tf/{link}' for link in MOVING_LINKS} <= paths
    assert {'/cameras/front', '/cameras/wrist', '/joints/gripper/measured', '/joints/gripper/action'} <= paths


def test_lerobot_dataset_viz_saves_our_export(dataset, tmp_path):
    viz = Path(sys.executable).parent / 'lerobot-dataset-viz'
    out = subprocess.run([str(viz), '--repo-id', 'local/viewed', '--root', str(dataset), '--episode-index', '0',
                          '--save', '1', '--output-dir', str(tmp_path), '--num-workers', '0'],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    saved = list(tmp_path.glob('*.rrd'))
    assert saved and saved[0].stat().st_size > 10_000, saved
    assert any(p.startswith('/observation.images.front') for p in entity_paths(saved[0]))


def test_the_emulated_arm_is_shown_without_a_sim(tmp_path):
    """hw_emulated viewer:=true: the hardware node's robot_description, TF and joint
    states (no world, no cube, no camera)."""
    import rclpy
    from sensor_msgs.msg import JointState

    rrd = tmp_path / 'hw.rrd'
    hw = subprocess.Popen(ROBOSANDBOX + ['launch', 'hw_emulated', f'port:={tmp_path / "bus"}',
                                         f'calibration_file:={tmp_path / "calibration.json"}', 'viewer:=true',
                                         'viewer_port:=0', f'viewer_save:={rrd}'],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rclpy.init()
    node = rclpy.create_node('viewer_test_listener')
    states = []
    node.create_subscription(JointState, 'joint_states', states.append, 10)
    try:
        deadline = time.monotonic() + 120
        while len(states) < 100 and time.monotonic() < deadline and hw.poll() is None:
            rclpy.spin_once(node, timeout_sec=0.1)
        assert len(states) >= 100, 'the emulated arm published no joint_states'
    finally:
        node.destroy_node()
        rclpy.shutdown()
        stop(hw)
    assert hw.returncode == 0
    paths = entity_paths(rrd)
    assert {f'/tf/{link}' for link in MOVING_LINKS} | {'/tf/base_link'} <= paths, paths
    assert {f'/joints/{joint}/measured' for joint in ROBOT.joints} <= paths, paths
    assert not any(p.startswith('/cameras/') for p in paths)


def test_what_cannot_be_viewed_is_named(dataset, tmp_path):
    missing = subprocess.run(ROBOSANDBOX + ['view', str(tmp_path / 'nothing'), '--save', str(tmp_path / 'n.rrd'),
                                            '--no-serve'],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and 'no such episode bag or dataset' in missing.stderr
    beyond = subprocess.run(ROBOSANDBOX + ['view', f'{dataset}#7', '--save', str(tmp_path / 'x.rrd'), '--no-serve'],
                            capture_output=True, text=True, timeout=120)
    assert beyond.returncode == 1 and 'no episode 7 (episodes: 0..0)' in beyond.stderr
    not_a_bag = tmp_path / 'empty'
    not_a_bag.mkdir()
    empty = subprocess.run(ROBOSANDBOX + ['view', str(not_a_bag), '--save', str(tmp_path / 'y.rrd'), '--no-serve'],
                           capture_output=True, text=True, timeout=60)
    assert empty.returncode == 1 and 'not a rosbag2 bag' in empty.stderr


# --- a browser ------------------------------------------------------------------

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMIUM_FLAGS = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync', '--enable-unsafe-swiftshader',
                  '--use-angle=swiftshader', '--ignore-gpu-blocklist']


def red_pixels(png: bytes) -> int:
    """Pixels of the cube's red (0.8, 0.2, 0.2), as the 3D view or a camera shows it
    (not the viewer's orange warnings: their green is well above their blue)."""
    rgb = _rgb(png)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return int(np.count_nonzero((r > 100) & (g < 0.45 * r) & (b < 0.45 * r) & (np.abs(g - b) < 40)))


def screenshots(url: str, until, timeout: float) -> bytes:
    """Screenshots of ``url`` until ``until(png)`` holds or ``timeout`` s pass; the last."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={'width': 1280, 'height': 800})
            page.goto(url)
            deadline = time.monotonic() + timeout
            while True:
                png = page.screenshot()
                if until(png) or time.monotonic() > deadline:
                    return png
                page.wait_for_timeout(2000)
        finally:
            browser.close()


@pytest.fixture
def browser_ready():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f'no Chromium at {CHROMIUM} (tools/setup_venv.sh installs Debian\'s chromium as root)')
    pytest.importorskip('playwright', reason='playwright (requirements-venv.in) drives the browser')


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_browser_shows_the_running_sim_not_an_empty_viewer(browser_ready, tmp_path):
    # The empty viewer: served, nothing logged.
    web, grpc = free_port(), free_port()
    empty = subprocess.Popen(
        [sys.executable, '-c', 'import time; from robosandbox_viewer.scene import open_view; '
                               f'open_view("robosandbox", {web}, {grpc}); time.sleep(600)'],
        start_new_session=True)
    try:
        url = f'http://localhost:{web}/?url=rerun%2Bhttp://localhost:{grpc}/proxy&renderer=webgl'
        blank = screenshots(url, until=lambda png: False, timeout=8)
    finally:
        stop(empty)
    assert red_pixels(blank) < 50

    web, grpc = free_port(), free_port()
    sim = subprocess.Popen(ROBOSANDBOX + ['launch', 'sim', 'viewer:=true', f'viewer_port:={web}',
                                          f'viewer_grpc_port:={grpc}'],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        url, printed = None, []
        for line in sim.stdout:
            printed.append(line)
            found = re.search(r'Rerun web viewer: (\S+)', line)
            if found:
                url = found.group(1)
                break
        assert url == f'http://localhost:{web}/?url=rerun%2Bhttp://localhost:{grpc}/proxy', ''.join(printed)
        # Keep reading what the bringup prints: a full pipe would stall it.
        threading.Thread(target=lambda: printed.extend(sim.stdout), daemon=True).start()
        shown = screenshots(url + '&renderer=webgl', until=lambda png: red_pixels(png) > 300, timeout=180)
    finally:
        stop(sim)
    (tmp_path / 'viewer.png').write_bytes(shown)
    assert red_pixels(shown) > 300, f'the cube is not on the page: see {tmp_path / "viewer.png"}'
    difference = np.mean(np.abs(np.asarray(_rgb(shown)) - np.asarray(_rgb(blank))))
    assert difference > 5, difference


def _rgb(png: bytes):
    import io
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert('RGB')).astype(int)


def test_ros2_param_sees_and_sets_the_viewers_parameters(tmp_path):
    """As `ros2 param describe/get/set /viewer ...` would: ranges and read-only ports
    described, a port refused, max_rate accepted within its range and read back."""
    import rclpy
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient

    from robosandbox_cli.processes import NodeProcess
    from robosandbox_control.spinning import wait_future

    viewer = NodeProcess('robosandbox_viewer', 'viewer', 'web_port:=0', f'save:={tmp_path / "v.rrd"}')
    rclpy.init()
    node = rclpy.create_node('viewer_param_client')
    try:
        client = AsyncParameterClient(node, 'viewer')
        assert client.wait_for_services(timeout_sec=60.0), viewer.output.text()
        described = wait_future(node, client.describe_parameters(['max_rate', 'web_port'])).descriptors
        assert described[0].floating_point_range[0].to_value == 1000.0 and not described[0].read_only
        assert described[1].read_only
        refused = wait_future(node, client.set_parameters([Parameter('web_port', value=1234)])).results[0]
        assert not refused.successful
        accepted = wait_future(node, client.set_parameters([Parameter('max_rate', value=5.0)])).results[0]
        assert accepted.successful, accepted.reason
        value = wait_future(node, client.get_parameters(['max_rate'])).values[0]
        assert value.double_value == 5.0
        beyond = wait_future(node, client.set_parameters([Parameter('max_rate', value=-1.0)])).results[0]
        assert not beyond.successful
    finally:
        node.destroy_node()
        rclpy.shutdown()
        viewer.close()
    assert viewer.returncode == 0, viewer.output.text()
