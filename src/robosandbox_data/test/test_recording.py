"""Recording episodes from the sim, exporting them to LeRobot, and what bad bags do.

The recorded episodes come from the real bringup (``robosandbox launch
sim_record``: sim, scripted expert, recorder and episode runner as separate
processes); broken bags are made from those, or with the recorder's own writer.
"""

from contextlib import contextmanager
import json
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
import yaml
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from robosandbox_cli.processes import NodeProcess
from robosandbox_control.spinning import spin_for, spin_until, wait_future
from robosandbox_description.robot import load_robot
from robosandbox_msgs.srv import StartEpisode, StopEpisode
from robosandbox_data.episodes.bag import EpisodeInfo, read_info, recoverable_messages
from robosandbox_data.episodes.export import export, ExportError, ExportOptions
from robosandbox_data.episodes.frames import frame_times, select
from robosandbox_data.episodes.writer import EpisodeWriter, WriterConfig

pytestmark = pytest.mark.nodes     # starts ROS node processes: not in `make test-fast`

JOINTS = list(load_robot('so101').joints)
ROBOSANDBOX = [sys.executable, '-m', 'robosandbox_cli.main']


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Two expert episodes recorded through ``robosandbox launch sim_record``."""
    runs = tmp_path_factory.mktemp('runs')
    done = subprocess.run(
        ROBOSANDBOX + ['launch', 'sim_record', 'episodes:=2', 'seed:=20', f'runs_dir:={runs}',
                       'camera_width:=160', 'camera_height:=120'],
        capture_output=True, text=True, timeout=240, start_new_session=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(re.findall(r'recorded .*: complete, \d+ messages, 0 dropped', done.stdout)) == 2, \
        done.stdout
    return runs


@pytest.fixture(scope='module')
def dataset(runs, tmp_path_factory):
    root = tmp_path_factory.mktemp('datasets') / 'pick'
    report = export([runs], root, ExportOptions(progress=False))
    return root, report


def bags(runs):
    return sorted(p for p in runs.iterdir() if p.is_dir())


# Recording ------------------------------------------------------------------

def test_recorded_bags_are_standard_rosbag2_read_by_rosbags_and_mcap(runs):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    for bag in bags(runs):
        with Reader(bag) as reader:
            counts = {c.topic: c.msgcount for c in reader.connections}
        # Plain YAML: no robosandbox code needed to read what the episode was.
        meta = yaml.safe_load((bag / 'metadata.yaml').read_text())
        custom = meta['rosbag2_bagfile_information']['custom_data']
        for topic in ('/joint_states', '/joint_trajectory', '/policy/action', '/task_status', '/clock',
                      '/cameras/front/image_raw', '/cameras/front/camera_info',
                      '/cameras/wrist/image_raw'):
            assert counts.get(topic, 0) > 0, (topic, counts)
        # The episode is described in plain metadata custom data.
        assert custom['robosandbox.status'] == 'complete'
        assert custom['robosandbox.success'] == 'true'
        assert custom['robosandbox.task'] == 'pick_cube'
        assert custom['robosandbox.policy'] == 'expert'
        assert custom['robosandbox.dropped'] == '0'
        assert 'rosbags' in json.loads(custom['robosandbox.versions'])
        # mcap-ros2-support decodes the same messages from the schemas in the file.
        with open(bag / f'{bag.name}.mcap', 'rb') as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            states = [m for _, _, _, m in reader.iter_decoded_messages(topics=['/joint_states'])]
        assert len(states) == counts['/joint_states']
        assert list(states[0].name) == JOINTS
    seeds = sorted(read_info(b).seed for b in bags(runs))
    assert seeds == [20, 21]


def test_the_recorded_targets_are_stamped_with_the_observation_they_answer(runs):
    from robosandbox_data.episodes.scan import scan_episode
    scan = scan_episode(bags(runs)[0])
    targets = scan.topics['/policy/action'].stamps
    images = scan.topics['/cameras/front/image_raw'].stamps
    # The policy ticks on camera images, on a 30 Hz grid: each target carries
    # the tick's stamp, within half a period of the image it answers.
    # The stop can land between the policy's last target and the (larger, slower)
    # image it answers reaching the recorder: judge targets within the images' span.
    inside = targets[targets <= images[-1] + 0.5 / 30]
    assert len(inside) >= len(targets) - 2
    nearest = np.abs(inside[:, None] - images[None, :]).min(axis=1)
    assert nearest.max() <= 0.5 / 30 + 1e-6
    assert np.all(np.diff(targets) > 0)


@contextmanager
def recorder_client(runs, *parameters):
    """A recorder in its own process and a client of its services."""
    rec = NodeProcess('robosandbox_data', 'recorder_node', f'runs_dir:={runs}', *parameters, name='recorder')
    rclpy.init()
    node = rclpy.create_node('recorder_test_client')
    try:
        node.start = node.create_client(StartEpisode, 'recorder/start')
        node.stop = node.create_client(StopEpisode, 'recorder/stop')
        assert node.start.wait_for_service(timeout_sec=60.0), rec.output.text()
        node.rec, node.runs = rec, runs
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown()
        rec.close()


@pytest.fixture
def recorder(tmp_path):
    """A sim, a recorder and a client of the recorder."""
    sim = NodeProcess('robosandbox_sim', 'sim_node', 'cameras:=[front]', 'camera_width:=160',
                      'camera_height:=120')
    try:
        with recorder_client(tmp_path, 'flush_period:=0.2') as node:
            states = []
            node.create_subscription(JointState, 'joint_states', states.append, 10)
            assert spin_until(node, lambda: states, 60.0), sim.output.text()
            yield node
    finally:
        sim.close()


def start_episode(node, **fields):
    response = wait_future(node, node.start.call_async(StartEpisode.Request(**fields)))
    assert response.success, response.message
    return Path(response.bag_path)


def test_start_stop_reports_counts_and_refuses_double_starts(recorder):
    bag = start_episode(recorder, task='pick_cube', seed=3, name='ep')
    second = wait_future(recorder, recorder.start.call_async(StartEpisode.Request(task='x')))
    assert not second.success and 'already recording' in second.message
    time.sleep(1.0)
    stop = wait_future(recorder, recorder.stop.call_async(
        StopEpisode.Request(success=False, success_known=True, end_reason='timeout')))
    assert stop.stopped and stop.complete and stop.bag_path == str(bag)
    assert stop.messages > 100 and stop.dropped == 0
    info = read_info(bag)
    assert (info.status, info.success, info.end_reason, info.seed) == \
        ('complete', 'false', 'timeout', 3)
    with Reader(bag) as reader:
        assert reader.message_count == stop.messages
    again = wait_future(recorder, recorder.stop.call_async(StopEpisode.Request()))
    assert not again.stopped


def refusal_once(node, *words, timeout=30.0):
    """Ask for episodes until one is refused naming ``words``; those that start are discarded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = wait_future(node, node.start.call_async(StartEpisode.Request(task='t')))
        if not response.success:
            if all(w in response.message for w in words):
                return response.message
        else:
            wait_future(node, node.stop.call_async(StopEpisode.Request(discard=True)))
        spin_for(node, 0.2)
    raise AssertionError(f'no refusal naming {words} within {timeout} s')


def start_once(node, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = wait_future(node, node.start.call_async(StartEpisode.Request(task='t')))
        if response.success:
            return wait_future(node, node.stop.call_async(StopEpisode.Request(discard=True)))
        spin_for(node, 0.2)
    raise AssertionError(f'no episode started within {timeout} s: {response.message}')


def test_an_episode_starts_only_while_every_camera_flows(recorder):
    # A camera that sent one image and stopped: the recorder records it, then refuses to
    # start an episode once it has been silent for a second of sim time.
    ghost = recorder.create_publisher(Image, 'cameras/ghost/image_raw', 10)
    image = Image(height=2, width=2, encoding='rgb8', step=6, data=bytes(12))
    ghost.publish(image)
    message = refusal_once(recorder, 'not flowing', '/cameras/ghost/image_raw silent for')
    assert '/joint_states' not in message and '/cameras/front/image_raw' not in message
    # Flowing again: episodes start.
    timer = recorder.create_timer(1 / 30, lambda: ghost.publish(image))
    start_once(recorder)
    # Unplugged: no publisher at all.
    recorder.destroy_timer(timer)
    recorder.destroy_publisher(ghost)
    refusal_once(recorder, '/cameras/ghost/image_raw has no publisher')


def test_a_required_topic_without_a_publisher_is_named(tmp_path):
    with recorder_client(tmp_path, 'required_topics:=[joint_states]') as node:
        response = wait_future(node, node.start.call_async(StartEpisode.Request(task='t')))
        assert not response.success
        assert response.message.startswith('not flowing: /joint_states has no publisher'), response.message
        assert not any(tmp_path.iterdir())


def test_sigint_mid_episode_closes_the_bag_marked_incomplete(recorder):
    # A complete episode first, as in sim_record: its summary is logged where the
    # interrupted one's is too.
    start_episode(recorder, task='pick_cube', name='complete')
    stop = wait_future(recorder, recorder.stop.call_async(
        StopEpisode.Request(success=True, success_known=True, end_reason='done')))
    assert stop.complete
    bag = start_episode(recorder, task='pick_cube', name='interrupted')
    time.sleep(1.0)
    assert recorder.rec.interrupt(timeout=30) == 0
    assert 'Traceback' not in recorder.rec.output.text(), recorder.rec.output.text()
    info = read_info(bag)
    assert info.status == 'incomplete' and info.success == 'unknown'
    assert 'shut down mid-episode' in info.end_reason
    with Reader(bag) as reader:          # closed cleanly: fully readable
        assert reader.message_count == info.messages > 50
    # Never exported as an episode, whatever the selection.
    with pytest.raises(ExportError, match='incomplete'):
        export([bag], recorder.runs / 'ds', ExportOptions(include_all=True, progress=False))


def test_a_killed_recorder_leaves_its_chunks_readable_and_the_bag_incomplete(recorder):
    bag = start_episode(recorder, task='pick_cube', name='killed')
    time.sleep(1.5)
    recorder.rec.child.process.kill()
    recorder.rec.child.process.wait(timeout=10)
    assert read_info(bag).status == 'incomplete'
    # No index or footer, but every closed chunk is there for a streaming reader.
    assert recoverable_messages(bag) > 100
    inspected = subprocess.run(ROBOSANDBOX + ['inspect', str(bag)], capture_output=True,
                               text=True, timeout=60)
    assert 'status: incomplete' in inspected.stdout
    assert re.search(r'recovers [1-9]\d+ messages', inspected.stdout), inspected.stdout


def js_bytes(t, q, names=JOINTS):
    msg = JointState(name=list(names), position=[float(x) for x in q])
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int(round(t % 1 * 1e9))
    return serialize_message(msg)


def test_a_write_error_marks_the_bag_incomplete_and_counts_the_loss(tmp_path):
    # A file-size limit makes writes fail as a full disk does (Python ignores SIGXFSZ).
    code = (
        'import resource\n'
        'from rclpy.serialization import serialize_message\n'
        'from sensor_msgs.msg import Image\n'
        'from robosandbox_data.episodes.bag import EpisodeInfo\n'
        'from robosandbox_data.episodes.writer import EpisodeWriter, WriterConfig\n'
        'w = EpisodeWriter(__import__("pathlib").Path(r"%s"), EpisodeInfo(task="t"),\n'
        '                  WriterConfig(flush_period=0.05))\n'
        'resource.setrlimit(resource.RLIMIT_FSIZE, (3 * 2**20, 3 * 2**20))\n'
        'w.add_topic("/img", "sensor_msgs/msg/Image")\n'
        'data = serialize_message(Image(height=480, width=640, encoding="rgb8", step=1920,\n'
        '                               data=bytes(480 * 640 * 3)))\n'
        'for i in range(20):\n'
        '    w.put("/img", i, data)\n'
        's = w.close("true", "done", 1.0)\n'
        'print(s.complete, s.messages, s.dropped, s.error)\n') % (tmp_path / 'full')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    complete, messages, dropped, error = out.stdout.split(' ', 3)
    assert complete == 'False', out.stdout + out.stderr
    assert int(messages) + int(dropped) == 20 and int(dropped) > 0
    assert 'write failed' in error
    info = read_info(tmp_path / 'full')
    assert info.status == 'incomplete' and not info.succeeded


def test_messages_the_queue_cannot_hold_are_dropped_and_counted(tmp_path):
    writer = EpisodeWriter(tmp_path / 'q', EpisodeInfo(task='t'), WriterConfig(max_queue_bytes=1000))
    writer.add_topic('/joint_states', 'sensor_msgs/msg/JointState')
    small, big = js_bytes(0.0, np.zeros(6)), js_bytes(0.0, np.zeros(6), names=['j' * 2000])
    for i in range(10):
        writer.put('/joint_states', i, small)
        writer.put('/joint_states', i, big)          # larger than the whole queue
    summary = writer.close('true', 'done', 1.0)
    # Every message is either written or counted; the big ones never fit.
    assert summary.complete and summary.messages + summary.dropped == 20
    assert summary.dropped >= 10 and summary.messages >= 1
    assert read_info(tmp_path / 'q').dropped_by_topic == {'/joint_states': summary.dropped}
    with Reader(tmp_path / 'q') as reader:
        assert reader.message_count == summary.messages


# Frame alignment ---------------------------------------------------------------

def test_frames_take_the_latest_message_up_to_half_a_frame_ahead():
    fps = 30
    images = 0.2 + np.array([0, 34, 66, 100, 134]) * 1e-3      # on the sim's 2 ms grid
    states = 0.19 + np.arange(0, 0.2, 0.01)                      # 100 Hz, starts earlier
    times = frame_times({'img': images, 'state': states}, fps)
    assert times[0] == pytest.approx(0.2) and len(times) == 5
    # Each image lands on its own frame although 34 ms > 1/30 s.
    assert select(images, times, fps).tolist() == [0, 1, 2, 3, 4]
    # States: the latest at or before t + 1/60 s.
    picked = states[select(states, times, fps)]
    assert np.all(picked <= times + 0.5 / fps + 1e-9)
    assert np.all(picked > times + 0.5 / fps - 0.01 - 1e-9)


# Export ----------------------------------------------------------------------

def video_frames(path) -> int:
    import av
    with av.open(str(path)) as container:
        return container.streams.video[0].frames


def test_export_writes_a_lerobot_dataset_that_lerobot_loads(dataset):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    root, report = dataset
    ds = LeRobotDataset('local/pick', root=root)
    assert ds.meta.info['codebase_version'] == 'v3.0'
    assert ds.num_episodes == 2
    assert ds.num_frames == sum(p.frames for p in report.episodes) > 150
    assert set(ds.meta.video_keys) == {'observation.images.front', 'observation.images.wrist'}
    assert ds.meta.features['observation.state']['names'] == JOINTS
    assert ds.meta.robot_type == 'so101_follower'
    assert list(ds.meta.tasks.index) == ['pick up the red cube']
    lengths = list(ds.meta.episodes['length'])
    assert lengths == [p.frames for p in report.episodes]
    for key in ds.meta.video_keys:          # every frame reached the video: none dropped
        assert sum(video_frames(f) for f in (root / 'videos' / key).rglob('*.mp4')) == ds.num_frames
    frame = ds[lengths[0] // 2]
    assert tuple(frame['observation.images.front'].shape) == (3, 120, 160)
    assert float(frame['observation.images.front'].std()) > 0.01      # a real picture
    data = ds.hf_dataset.with_format('numpy')
    state, action = np.stack(data['observation.state']), np.stack(data['action'])
    assert np.abs(action - state).max() > 0.05           # targets lead the arm
    assert not np.allclose(action, state)
    episode = np.asarray(data['episode_index']).ravel()
    within = episode[1:] == episode[:-1]
    assert np.abs(np.diff(state, axis=0))[within].max() < 0.3    # no jumps between frames, rad
    assert 'observation.state' in ds.meta.stats and 'action' in ds.meta.stats


def test_lerobot_units_match_lerobots_so101_convention(runs, tmp_path, dataset):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    export([runs], tmp_path / 'deg', ExportOptions(units='lerobot_so101', progress=False))
    deg = LeRobotDataset('local/deg', root=tmp_path / 'deg')
    rad = LeRobotDataset('local/pick', root=dataset[0])
    assert deg.meta.features['action']['names'] == [f'{j}.pos' for j in JOINTS]
    d = np.stack(deg.hf_dataset.with_format('numpy')['observation.state'])
    r = np.stack(rad.hf_dataset.with_format('numpy')['observation.state'])
    np.testing.assert_allclose(d[:, :5], np.degrees(r[:, :5]), atol=1e-3)
    assert d[:, 5].min() >= -1.0 and d[:, 5].max() <= 101.0       # gripper 0-100


def test_export_keeps_the_cameras_asked_for_at_the_size_asked_for(runs, tmp_path, dataset):
    # Train at 96x128 (here 60x80) without re-recording.
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    export([runs], tmp_path / 'small', ExportOptions(cameras=('/cameras/front/image_raw',),
                                                      image_size=(60, 80), progress=False))
    small = LeRobotDataset('local/small', root=tmp_path / 'small')
    assert small.meta.video_keys == ['observation.images.front']
    assert tuple(small.meta.features['observation.images.front']['shape']) == (60, 80, 3)
    frame, full = small[small.num_frames // 2], LeRobotDataset('local/pick', root=dataset[0])[small.num_frames // 2]
    assert tuple(frame['observation.images.front'].shape) == (3, 60, 80)
    # The same picture, smaller: compare with the full-size frame shrunk the same way.
    import cv2
    shrunk = cv2.resize(full['observation.images.front'].permute(1, 2, 0).numpy(), (80, 60),
                        interpolation=cv2.INTER_AREA)
    assert np.abs(frame['observation.images.front'].permute(1, 2, 0).numpy() - shrunk).mean() < 0.05
    from robosandbox_cli.main import main
    with pytest.raises(SystemExit):
        main(['export-lerobot', str(runs), str(tmp_path / 'x'), '--image-size', '96by128'])


@pytest.mark.parametrize('option, value', [('--fps', '0'), ('--fps', '-3'), ('--fps', '2.5'),
                                           ('--max-gap', '0'), ('--max-gap', 'nan'), ('--max-gap', '-1')])
def test_a_rate_or_gap_that_is_not_positive_is_refused_before_anything_is_read(option, value, tmp_path, capsys):
    # --fps 0 ended in a ZeroDivisionError traceback, --fps -3 in LeRobot's ValueError one.
    from robosandbox_cli.main import main
    with pytest.raises(SystemExit) as e:
        main(['export-lerobot', str(tmp_path / 'runs'), str(tmp_path / 'x'), option, value])
    assert e.value.code == 2
    assert f"argument {option}: '{value}' is not a positive" in capsys.readouterr().err
    assert not (tmp_path / 'x').exists()


def test_a_state_based_export_carries_the_recorded_object_poses(runs, tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from robosandbox_data.episodes.bag import decode
    root = tmp_path / 'state'
    export([runs], root, ExportOptions(cameras=None, environment_state='/task_status', progress=False))
    ds = LeRobotDataset('local/state', root=root)
    assert ds.meta.video_keys == []
    feature = ds.meta.features['observation.environment_state']
    assert feature['names'] == ['cube.x', 'cube.y', 'cube.z', 'cube.qw', 'cube.qx', 'cube.qy', 'cube.qz']
    # Each episode's frames take the recorded statuses in order, and the cube rises as it is picked.
    for episode, bag in enumerate(bags(runs)):
        with Reader(bag) as reader:
            recorded = []
            for conn, _, data in reader.messages([c for c in reader.connections if c.topic == '/task_status']):
                pose = decode(data, conn.msgtype).object_poses[0]
                q = np.array([pose.orientation.w, pose.orientation.x, pose.orientation.y, pose.orientation.z])
                recorded.append([pose.position.x, pose.position.y, pose.position.z, *(q if q[0] >= 0 else -q)])
        recorded = np.asarray(recorded, dtype=np.float32)
        meta = ds.meta.episodes
        lo, hi = int(meta['dataset_from_index'][episode]), int(meta['dataset_to_index'][episode])
        states = np.stack([ds[i]['observation.environment_state'].numpy() for i in range(lo, hi)])
        # Matched in order (a cube at rest repeats its status, so a value alone may match
        # several): every frame's status is one recorded at or after the previous frame's.
        which, at = [], 0
        for state in states:
            equal = np.flatnonzero(np.all(np.isclose(recorded[at:], state, atol=1e-6), axis=1))
            assert equal.size, (len(which), state)
            at += int(equal[0])
            which.append(at)
        assert len(set(which)) > 10
        assert states[-1, 2] > states[0, 2] + 0.02
        assert np.allclose(np.linalg.norm(states[:, 3:], axis=1), 1.0, atol=1e-4)


def test_a_state_based_export_refuses_episodes_without_a_task_status(tmp_path):
    write_episode(tmp_path / 'runs' / 'no_status')
    with pytest.raises(ExportError, match='no_status.*no messages on /task_status'):
        export([tmp_path / 'runs'], tmp_path / 'ds', ExportOptions(environment_state='/task_status',
                                                                   progress=False))
    assert not (tmp_path / 'ds').exists()


def test_dry_run_writes_nothing_and_append_adds_episodes(runs, tmp_path, dataset):
    target = tmp_path / 'grow'
    report = export([runs], target, ExportOptions(dry_run=True, progress=False))
    assert report.frames > 0 and not target.exists()
    export([bags(runs)[0]], target, ExportOptions(progress=False))
    with pytest.raises(ExportError, match='exists'):
        export([bags(runs)[1]], target, ExportOptions(progress=False))
    export([bags(runs)[1]], target, ExportOptions(append=True, progress=False))
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    grown = LeRobotDataset('local/grow', root=target)
    assert grown.num_episodes == 2 and grown.num_frames == dataset[1].frames
    assert [p.name for p in tmp_path.iterdir()] == ['grow']       # no temporary leftovers


def test_failed_episodes_are_left_out_unless_all(tmp_path, runs):
    copy = tmp_path / 'runs'
    shutil.copytree(runs, copy)
    failed = bags(copy)[0]
    meta = failed / 'metadata.yaml'
    meta.write_text(meta.read_text().replace("robosandbox.success: 'true'",
                                             "robosandbox.success: 'false'"))
    report = export([copy], tmp_path / 'ok', ExportOptions(dry_run=True, progress=False))
    assert [p.scan.bag for p in report.episodes] == [bags(copy)[1]]
    assert report.skipped[0][0] == failed and 'not successful' in report.skipped[0][1]
    report = export([copy], tmp_path / 'all', ExportOptions(dry_run=True, include_all=True,
                                                            progress=False))
    assert len(report.episodes) == 2


def test_lerobot_training_accepts_the_exported_dataset(dataset, tmp_path):
    root, _ = dataset
    out = tmp_path / 'train'
    env = {**os.environ, 'WANDB_MODE': 'disabled'}
    done = subprocess.run(
        [sys.executable, '-m', 'lerobot.scripts.lerobot_train', '--dataset.repo_id=local/pick',
         f'--dataset.root={root}', '--policy.type=act', '--policy.device=cpu',
         '--policy.push_to_hub=false', '--policy.pretrained_backbone_weights=null',
         '--policy.dim_model=32', '--policy.n_heads=2', '--policy.dim_feedforward=64',
         '--policy.n_encoder_layers=1', '--policy.n_decoder_layers=1', '--policy.chunk_size=5',
         '--policy.n_action_steps=5', '--policy.use_vae=false', '--steps=2', '--batch_size=2',
         '--num_workers=0', '--save_freq=2', '--wandb.enable=false', f'--output_dir={out}'],
        capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    model = out / 'checkpoints' / '000002' / 'pretrained_model'
    assert (model / 'model.safetensors').exists()
    config = json.loads((model / 'config.json').read_text())
    assert config['input_features']['observation.state']['shape'] == [6]


# Bad bags ------------------------------------------------------------------------

def copy_runs(runs, tmp_path):
    copy = tmp_path / 'runs'
    shutil.copytree(runs, copy)
    return copy, bags(copy)


def assert_export_fails_cleanly(paths, tmp_path, match):
    target = tmp_path / 'out' / 'dataset'
    with pytest.raises(ExportError, match=match):
        export(paths, target, ExportOptions(progress=False))
    assert not target.exists()
    assert not (tmp_path / 'out').exists() or not list((tmp_path / 'out').iterdir())


def test_a_truncated_bag_fails_the_export_naming_it(tmp_path, runs):
    copy, (first, second) = copy_runs(runs, tmp_path)
    mcap = second / f'{second.name}.mcap'
    os.truncate(mcap, mcap.stat().st_size // 2)
    assert_export_fails_cleanly([copy], tmp_path, re.escape(second.name) + '.*(corrupt|truncated)')


def test_a_corrupt_bag_fails_the_export_naming_it(tmp_path, runs):
    copy, (first, second) = copy_runs(runs, tmp_path)
    mcap = first / f'{first.name}.mcap'
    data = bytearray(mcap.read_bytes())
    data[-200:] = os.urandom(200)            # the index and footer: garbage
    mcap.write_bytes(bytes(data))
    assert_export_fails_cleanly([copy], tmp_path, re.escape(first.name) + '.*corrupt')


def write_episode(path, frames=30, names=JOINTS, size=(120, 160), topics=('state', 'action', 'image'),
                  camera_pause=range(0)):
    """A synthetic episode through the recorder's own writer."""
    writer = EpisodeWriter(path, EpisodeInfo(task='pick_cube', instruction='pick'))
    types = {'state': ('/joint_states', 'sensor_msgs/msg/JointState'),
             'action': ('/joint_trajectory', 'trajectory_msgs/msg/JointTrajectory'),
             'image': ('/cameras/front/image_raw', 'sensor_msgs/msg/Image')}
    for key in topics:
        writer.add_topic(*types[key])
    h, w = size
    for i in range(frames):
        t = 1.0 + i / 30
        stamp_ns = int(round(t * 1e9))
        if 'state' in topics:
            writer.put('/joint_states', stamp_ns, js_bytes(t, np.full(len(names), 0.01 * i), names))
        if 'action' in topics:
            cmd = JointTrajectory(joint_names=list(names), points=[JointTrajectoryPoint(
                positions=[0.01 * i + 0.1] * len(names))])
            cmd.header.stamp.sec, cmd.header.stamp.nanosec = int(t), int(round(t % 1 * 1e9))
            writer.put('/joint_trajectory', stamp_ns, serialize_message(cmd))
        if 'image' in topics and i not in camera_pause:
            img = Image(height=h, width=w, encoding='rgb8', step=w * 3, data=bytes(h * w * 3))
            img.header.stamp.sec, img.header.stamp.nanosec = int(t), int(round(t % 1 * 1e9))
            writer.put('/cameras/front/image_raw', stamp_ns, serialize_message(img))
    assert writer.close('true', 'done', 2.0).complete
    return path


def test_a_synthetic_episode_exports(tmp_path):
    write_episode(tmp_path / 'runs' / 'a')
    report = export([tmp_path / 'runs'], tmp_path / 'ds', ExportOptions(progress=False))
    assert report.frames == 30


def test_each_episode_carries_its_streams_timing_and_a_gappy_one_is_refused(tmp_path, capsys):
    # The camera pauses for 20 frames (0.7 s): the frames there would all repeat one image.
    bag = write_episode(tmp_path / 'runs' / 'gappy', frames=60, camera_pause=range(20, 40))
    stats = read_info(bag).topic_stats
    assert stats['/joint_states']['count'] == 60 and stats['/joint_states']['rate_hz'] == pytest.approx(30.0)
    assert stats['/joint_states']['jitter_ms'] < 0.01 and stats['/joint_states']['largest_gap_s'] == \
        pytest.approx(1 / 30, abs=1e-3)
    image = stats['/cameras/front/image_raw']
    assert image['count'] == 40 and image['largest_gap_s'] == pytest.approx(21 / 30, abs=1e-3)
    assert image['largest_gap_at'] == pytest.approx(1 + 19 / 30, abs=1e-3)
    assert_export_fails_cleanly([tmp_path / 'runs'], tmp_path,
                                r'episode gappy: /cameras/front/image_raw paused 0\.700 s at 1\.633 s, '
                                r'more than --max-gap 0\.5 s')
    assert export([tmp_path / 'runs'], tmp_path / 'ds', ExportOptions(max_gap=1.0, progress=False)).frames == 60
    from robosandbox_cli.main import main
    assert main(['inspect', str(bag)]) == 0
    assert re.search(r'/cameras/front/image_raw +40 msgs .* jitter +\d+\.\d+ ms +largest gap 0\.700 s',
                     capsys.readouterr().out)


def test_an_empty_bag_fails_the_export(tmp_path):
    write_episode(tmp_path / 'runs' / 'a')
    write_episode(tmp_path / 'runs' / 'empty', frames=0)
    assert_export_fails_cleanly([tmp_path / 'runs'], tmp_path, 'empty.*empty bag')


def test_a_missing_topic_fails_the_export(tmp_path):
    write_episode(tmp_path / 'runs' / 'no_action', topics=('state', 'image'))
    assert_export_fails_cleanly([tmp_path / 'runs'], tmp_path,
                                'no_action.*no messages on /joint_trajectory')


def test_inconsistent_episodes_fail_the_export(tmp_path):
    write_episode(tmp_path / 'joints' / 'a')
    write_episode(tmp_path / 'joints' / 'b', names=JOINTS[:5])
    assert_export_fails_cleanly([tmp_path / 'joints'], tmp_path, r'episode b .*joint names')
    write_episode(tmp_path / 'sizes' / 'a')
    write_episode(tmp_path / 'sizes' / 'b', size=(60, 80))
    assert_export_fails_cleanly([tmp_path / 'sizes'], tmp_path, r'episode b .*cameras')


def test_cli_reports_errors_and_inspects_datasets(dataset, tmp_path):
    root, report = dataset
    out = subprocess.run(ROBOSANDBOX + ['inspect', str(root), '--plot', str(tmp_path / 'p.png')],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert '2 episodes' in out.stdout and 'observation.images.front: video (120, 160, 3)' in out.stdout
    assert (tmp_path / 'p.png').read_bytes()[:4] == b'\x89PNG'
    bad = subprocess.run(ROBOSANDBOX + ['export-lerobot', str(tmp_path / 'nothing'),
                                        str(tmp_path / 'ds')], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 1 and 'no such bag' in bad.stderr and 'nothing was written' in bad.stderr
