"""Teleoperation with a leader arm: the stream's rule, the leader through LeRobot's own
teleoperator on an emulated leader (a servo bus on a pty turned by a scripted hand), and
the leader node driving the sim as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import rclpy
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from robosandbox_cli.processes import NodeProcess
from robosandbox_control.spinning import spin_until
from robosandbox_control.units import joint_units, LEROBOT_SO101
from robosandbox_description.robot import load_robot
from robosandbox_hw.emulator import calibration_for, EmulatedBus, HandPath, HandPathError, ScriptedHand
from robosandbox_hw.leader import CalibrationError, LeaderError, So101Leader, So101LeaderConfig
from robosandbox_teleop.stream import TeleopStream, TeleopStreamConfig

ROBOT = load_robot('so101')
JOINTS = ROBOT.joints
HOME = np.array([ROBOT.home[j] for j in JOINTS])


# --- the stream's rule ----------------------------------------------------------------

def test_stream_leads_the_follower_to_a_far_leader_at_the_approach_speed_then_tracks():
    stream = TeleopStream(TeleopStreamConfig(approach_velocity=0.5, tolerance=0.01))
    follower, leader, dt = np.zeros(6), np.array([1.0, -0.4, 0, 0, 0, 0.2]), 0.01
    targets = [stream.target(leader, follower, dt) for _ in range(250)]
    steps = np.abs(np.diff([np.zeros(6)] + targets, axis=0))
    fast = steps.max(axis=1) > 0.5 * dt + 1e-12                   # never faster than the approach,
    assert fast.sum() <= 1 and steps.max() <= 0.01 + 1e-12         # but the last step, within tolerance
    assert not stream.approaching and np.allclose(targets[-1], leader)
    assert np.allclose(targets[99], [0.5, -0.4, 0, 0, 0, 0.2])   # 1 s in: half way on the far joint
    moved = leader + 0.3                                           # reached: the leader itself, at once
    assert np.allclose(stream.target(moved, follower, dt), moved)


def test_stream_waits_for_the_follower_and_approaches_again_after_a_reset():
    stream = TeleopStream(TeleopStreamConfig(approach_velocity=1.0, tolerance=0.01))
    assert stream.target(np.ones(6), None, 0.01) is None           # where is the follower?
    for _ in range(200):
        stream.target(np.ones(6), np.zeros(6), 0.01)
    assert not stream.approaching
    stream.reset()
    assert np.allclose(stream.target(np.ones(6), np.full(6, 0.5), 0.01), 0.51)


# --- the emulated leader ----------------------------------------------------------------

@pytest.fixture
def leader_bus(tmp_path):
    """An emulated leader: its bus, its calibration (as a dict and as LeRobot's file)."""
    calibration = calibration_for(JOINTS, ROBOT.lower, ROBOT.upper)
    path = tmp_path / 'leader.json'
    path.write_text(json.dumps(calibration, indent=4))
    with EmulatedBus(link=tmp_path / 'ttyLeader') as bus:
        yield bus, calibration, path


def hand(bus, calibration, points, loop=False) -> ScriptedHand:
    """A hand on the emulated leader moving along ``points`` [(t, positions rad)]."""
    path = HandPath(JOINTS, np.array([t for t, _ in points]), np.array([q for _, q in points], dtype=float))
    units = joint_units(LEROBOT_SO101, JOINTS, ROBOT.gripper_joint, ROBOT.gripper_range)
    return ScriptedHand(bus, path, calibration, units.to_policy, loop=loop)


def test_hand_paths_are_checked(tmp_path):
    bad = {'times': 'joints: [a, b]\npoints:\n- {t: 0, positions: [0, 0]}\n- {t: 0, positions: [1, 1]}\n',
           'size': 'joints: [a, b]\npoints:\n- {t: 0, positions: [0]}\n',
           'keys': 'points: []\n',
           'nan': 'joints: [a]\npoints:\n- {t: 0, positions: [.nan]}\n'}
    for name, text in bad.items():
        (tmp_path / f'{name}.yaml').write_text(text)
        with pytest.raises(HandPathError, match=name + '.yaml'):
            HandPath.load(tmp_path / f'{name}.yaml')
    path = HandPath(('a',), np.array([0.0, 2.0]), np.array([[0.0], [1.0]]))
    assert path.at(0.5)[0] == pytest.approx(0.25) and path.at(5.0)[0] == 1.0
    assert path.at(2.5, loop=True)[0] == pytest.approx(0.25)


def test_leader_reads_the_hand_in_radians_and_is_found_again_after_a_loss(leader_bus):
    bus, calibration, path = leader_bus
    pose = HOME + np.array([0.5, 0.3, -0.2, 0.1, -1.0, 0.6])
    hand(bus, calibration, [(0.0, pose)]).place(0.0)
    leader = So101Leader(So101LeaderConfig(bus.port, path, ROBOT.gripper_range))
    leader.connect()
    try:
        np.testing.assert_allclose(leader.read(), pose, atol=2 * np.pi / 4096)
        assert not any(bus.torque().values())                      # a leader is never powered
        for servo in bus.servos.values():
            servo.faults.dead = True
        with pytest.raises(LeaderError, match='stopped answering'):
            leader.read()
        assert not leader.connected
        with pytest.raises(LeaderError, match='no SO-101 leader'):
            leader.connect()
        # Answers without their parameters (a stray reply on a busy bus) made the SDK's
        # ping raise IndexError, which killed the node's reconnecting thread.
        for servo in bus.servos.values():
            servo.faults.dead = False
            servo.faults.short_rate = 1.0
        with pytest.raises(LeaderError, match='no SO-101 leader'):
            leader.connect()
        for servo in bus.servos.values():
            servo.faults.short_rate = 0.0
        leader.connect()
        np.testing.assert_allclose(leader.read(), pose, atol=2 * np.pi / 4096)
    finally:
        leader.close()


def test_a_leader_without_calibration_names_lerobots_command(tmp_path):
    with pytest.raises(CalibrationError, match='lerobot-calibrate --teleop.type=so101_leader .*--teleop.id=mine'):
        So101Leader(So101LeaderConfig('/dev/null', tmp_path / 'mine.json', ROBOT.gripper_range))


# --- the leader node driving the sim -----------------------------------------------------

class Watcher:
    """The test's view of the graph: the follower's and the leader's joint states, and the
    stream of targets, each with its arrival time."""

    def __init__(self):
        self.node = rclpy.create_node('teleop_watcher')
        self.follower: list[tuple[float, np.ndarray]] = []
        self.leader: list[tuple[float, np.ndarray]] = []
        self.targets: list[tuple[float, np.ndarray]] = []
        self.lock = threading.Lock()

        def keep(into):
            def on(msg):
                with self.lock:
                    into.append((time.monotonic(), np.array(msg.position)))
            return on
        self.node.create_subscription(JointState, 'joint_states', keep(self.follower), 100)
        self.node.create_subscription(JointState, 'leader/joint_states', keep(self.leader), 100)
        self.node.create_subscription(JointTrajectory, 'joint_trajectory', self._on_target, 100)

    def _on_target(self, msg):
        self.targets.append((time.monotonic(), np.array(msg.points[-1].positions)))

    def wait(self, condition, timeout, what):
        if not spin_until(self.node, condition, timeout):
            raise AssertionError(what() if callable(what) else what)

    def spin(self, seconds):
        spin_until(self.node, lambda: False, seconds)

    def position(self):
        return self.follower[-1][1]

    def since(self, start, samples=None):
        return [(t, q) for t, q in (self.follower if samples is None else samples) if t >= start]


def max_speed(samples, window=0.5) -> float:
    """The fastest joint, rad/s, over ``window`` s spans of wall time (long enough to smooth
    the arrival jitter of messages on a busy machine)."""
    fastest = 0.0
    for i, (t0, q0) in enumerate(samples):
        later = [(t, q) for t, q in samples[i + 1:] if t - t0 >= window]
        if later:
            t1, q1 = later[0]
            fastest = max(fastest, float(np.max(np.abs(q1 - q0))) / (t1 - t0))
    return fastest


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


def test_the_sim_follows_the_emulated_leader_and_holds_when_it_is_lost(ros, leader_bus):
    bus, calibration, path = leader_bus
    far = HOME + np.array([0.6, 0.5, -0.3, 0.0, 0.0, 0.0])       # where the leader lies at start
    hand(bus, calibration, [(0.0, far)]).place(0.0)
    sim = NodeProcess('robosandbox_sim', 'sim_node', 'use_sim_time:=true', 'cameras:=[front]',
                      'camera_width:=64', 'camera_height:=48')
    leader = NodeProcess('robosandbox_teleop', 'so101_leader', 'use_sim_time:=true', f'port:={bus.port}',
                         f'calibration_file:={path}', 'approach_velocity:=0.3')
    watcher = Watcher()
    try:
        # Led to the far leader at the approach speed: never jumped to it.
        watcher.wait(lambda: watcher.follower and watcher.targets, 90.0,
                     lambda: f'no joint_states or no stream:\n{sim.output.text()}\n{leader.output.text()}')
        start = time.monotonic()
        watcher.wait(lambda: np.max(np.abs(watcher.position() - far)) < 0.06, 30.0,
                     lambda: f'the follower never reached the leader: {watcher.position()} vs {far}')
        approach = time.monotonic() - start
        # The targets move at the approach speed; the follower, which may lag them when
        # the machine is busy, catches up no faster than its own servos, far below a jump.
        assert approach > 0.5 / 0.3, f'reached a leader 0.6 rad away in {approach:.2f} s'
        assert max_speed(watcher.since(start, watcher.targets)) < 0.3 * 1.3
        assert max_speed(watcher.since(start)) < 0.3 * 2.5

        # Tracking the hand (up to 0.7 rad/s): the follower within 0.2 rad of the leader's
        # latest reading (a lag under 0.3 s, the sim's servos included), then on it.
        moving = hand(bus, calibration, [(0.0, far), (1.5, far + [-0.6, -0.3, 0.3, 0.4, 0.5, 0.8]),
                                         (3.0, far + [-0.3, -0.5, 0.5, 0.0, -0.5, 0.3])]).start()
        start = time.monotonic()
        watcher.spin(3.5)
        moving.stop()
        watcher.spin(0.5)
        errors = []
        for t, q in watcher.since(start + 0.2):
            read = [r for s, r in watcher.leader if s <= t]
            errors.append(np.abs(q - read[-1]))
        worst = np.max(errors, axis=0)
        assert np.all(worst < 0.2), f'tracking error per joint {worst.round(3)}'
        np.testing.assert_allclose(watcher.position(), watcher.leader[-1][1], atol=0.03)

        # The leader stops answering: no more targets, the follower holds where it is.
        for servo in bus.servos.values():
            servo.faults.dead = True
        watcher.wait(lambda: 'stream stopped, the follower holds' in leader.output.text(), 10.0,
                     lambda: f'the loss was not reported:\n{leader.output.text()}')
        watcher.spin(0.3)
        targets, held = len(watcher.targets), watcher.position()
        watcher.spin(1.0)
        assert len(watcher.targets) == targets
        np.testing.assert_allclose(watcher.position(), held, atol=0.005)

        # Found again, somewhere else: led there slowly again.
        hand(bus, calibration, [(0.0, far)]).place(0.0)
        for servo in bus.servos.values():
            servo.faults.dead = False
        watcher.wait(lambda: len(watcher.targets) > targets, 20.0,
                     lambda: f'the leader was not found again:\n{leader.output.text()}')
        start = time.monotonic()
        watcher.wait(lambda: np.max(np.abs(watcher.position() - far)) < 0.06, 30.0,
                     'the follower never came back to the leader')
        assert max_speed(watcher.since(start, watcher.targets)) < 0.3 * 1.3
        assert leader.interrupt() == 0 and sim.interrupt() == 0
    finally:
        watcher.node.destroy_node()
        leader.close()
        sim.close()


# --- the hardware bringup, as a user runs it -----------------------------------------------

def test_hw_teleop_drives_the_emulated_follower_and_ctrl_c_twice_leaves_it_unpowered(ros, tmp_path):
    """``robosandbox launch hw_teleop leader:=emulated`` with the follower on an emulated bus:
    the follower reaches where the scripted hand put the leader; Ctrl-C twice (the terminal's
    and the launcher's, as under ros2 launch) ends it with every follower servo unpowered."""
    far = HOME + np.array([-0.4, 0.3, -0.3, 0.2, 0.6, 0.5])
    (tmp_path / 'hand.yaml').write_text(json.dumps({
        'joints': list(JOINTS), 'points': [{'t': 0.0, 'positions': far.tolist()},
                                           {'t': 3.0, 'positions': (far + 0.2).tolist()}]}))
    calibration = tmp_path / 'follower.json'
    calibration.write_text(json.dumps(calibration_for(JOINTS, ROBOT.lower, ROBOT.upper)))
    watcher = Watcher()
    with EmulatedBus(link=tmp_path / 'ttyFollower') as follower:
        launch = subprocess.Popen(
            [sys.executable, '-m', 'robosandbox_cli.main', 'launch', 'hw_teleop', f'port:={follower.port}',
             f'calibration_file:={calibration}', 'camera_names:=[]', 'camera_devices:=[]',
             'leader:=emulated', f'hand:={tmp_path / "hand.yaml"}'],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            watcher.wait(lambda: watcher.targets and watcher.leader and np.max(np.abs(
                watcher.position() - watcher.leader[-1][1])) < 0.05 and np.allclose(
                watcher.leader[-1][1], far + 0.2, atol=0.01), 90.0,
                lambda: f'the follower did not reach the leader: '
                        f'{watcher.follower[-1:]} vs {watcher.leader[-1:]}')
            assert all(follower.torque().values())
            launch.send_signal(signal.SIGINT)
            launch.send_signal(signal.SIGINT)
            output, _ = launch.communicate(timeout=60)
        finally:
            if launch.poll() is None:
                os.killpg(launch.pid, signal.SIGKILL)
                launch.wait()
            watcher.node.destroy_node()
        assert launch.returncode == 0, output
        assert not any(follower.torque().values()), output


# --- recording demonstrations by teleoperation --------------------------------------------

def test_a_teleop_recording_by_keys_exports_with_the_commanded_targets_as_action(ros, leader_bus, tmp_path):
    """The sim, the emulated leader moved by a hand, the recorder and teleop_keyboard reading
    keys from a terminal (a pty here): r / s / r / d / r / f / q leave two bags (a success, a
    failure; the discarded one gone), which export to a LeRobot dataset whose action is what
    so101_leader commanded."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from rosbags.highlevel import AnyReader

    bus, calibration, path = leader_bus
    moving = hand(bus, calibration, [(0.0, HOME), (1.0, HOME + [0.3, 0.2, -0.2, 0.1, 0.4, 0.6]),
                                     (2.0, HOME)], loop=True)
    runs = tmp_path / 'runs'
    keyboard, terminal = os.openpty()
    processes = [
        NodeProcess('robosandbox_sim', 'sim_node', 'use_sim_time:=true', 'cameras:=[front]',
                    'camera_width:=64', 'camera_height:=48'),
        NodeProcess('robosandbox_teleop', 'so101_leader', 'use_sim_time:=true', f'port:={bus.port}',
                    f'calibration_file:={path}', 'approach_velocity:=1.0'),
        NodeProcess('robosandbox_data', 'recorder_node', 'use_sim_time:=true', f'runs_dir:={runs}'),
        NodeProcess('robosandbox_teleop', 'teleop_keyboard', 'use_sim_time:=true', f'keys:={os.ttyname(terminal)}',
                    'reset_service:=sim/reset', 'seed:=3'),
    ]
    session = processes[-1]
    watcher = Watcher()

    def press(key, expect):
        before = session.output.text().count(expect)
        os.write(keyboard, key.encode())
        watcher.wait(lambda: session.output.text().count(expect) > before, 60.0,
                     lambda: f'no {expect!r} after {key!r}:\n{session.output.text()}')
        # The hand keeps moving: each stretch holds a second of targets (100 of them).
        targets = len(watcher.targets)
        watcher.wait(lambda: len(watcher.targets) >= targets + 100, 60.0,
                     lambda: f'the stream stopped after {key!r}:\n{processes[1].output.text()}')

    try:
        moving.start()
        watcher.wait(lambda: len(watcher.targets) > 20 and 'keys: r start' in session.output.text(), 90.0,
                     lambda: '\n'.join(p.output.text() for p in processes))
        press('r', 'recording episode 1 (seed 3)')
        press('s', 'as a success')
        press('r', 'recording episode 2 (seed 4)')
        press('d', 'discarded')
        press('r', 'recording episode 2 (seed 4)')
        press('f', 'as a failure')
        os.write(keyboard, b'q')
        assert session.child.process.wait(30) == 0, session.output.text()
    finally:
        moving.stop()
        watcher.node.destroy_node()
        for process in reversed(processes):
            process.close()
        os.close(keyboard)
        os.close(terminal)

    bags = sorted(p for p in runs.iterdir() if (p / 'metadata.yaml').is_file())
    assert [b.name.rsplit('_', 1)[-1] for b in bags] == ['seed3', 'seed4'], bags
    export = subprocess.run([sys.executable, '-m', 'robosandbox_cli.main', 'export-lerobot', str(runs),
                             str(tmp_path / 'ds'), '--all', '--no-progress'], capture_output=True, text=True)
    assert export.returncode == 0, export.stdout + export.stderr
    ds = LeRobotDataset('local/ds', root=tmp_path / 'ds')
    assert ds.num_episodes == 2
    data = ds.hf_dataset.with_format('numpy')
    action = np.stack(data['action'])
    with AnyReader(bags) as reader:
        commanded = np.array([reader.deserialize(raw, c.msgtype).position for c, _, raw in
                              reader.messages([c for c in reader.connections if c.topic == '/teleop/action'])])
    # Every exported action is one of the targets so101_leader commanded, and they move.
    nearest = np.min(np.abs(action[:, None, :] - commanded[None, :, :]).max(axis=2), axis=1)
    assert nearest.max() < 1e-5, nearest.max()
    assert np.ptp(action[:, 0]) > 0.1
