#!/usr/bin/env python3
"""Teleoperation latency: a leader read to the follower's Goal_Position, ours against LeRobot's loop.

Two emulated STS buses at 1 Mbps in this process: a leader (torque off) whose
shoulder_pan a hand steps by 0.02 rad every 0.15-0.25 s, and a follower. The
leader bus timestamps every Present_Position read it answers, the follower bus
every Goal_Position write; a step's latency runs from the first leader read
after the hand moved to the first follower goal that moved toward it.

  ours    so101_leader (100 Hz) -> joint_trajectory -> so101_node (100 Hz loop),
          each in its own process, as hw_teleop runs them.
  lerobot LeRobot's own teleoperation loop in one process: SOLeader.get_action()
          then SOFollower.send_action(), paced at 30 Hz as lerobot-record runs it
          (the issue's anchor; lerobot-teleoperate's default is 60 Hz).
  sim     so101_leader -> the sim: from the leader read to the first sim
          joint_states (as this process receives it) whose shoulder_pan moved.

Figures: median and p99 latency, ms, and the sustained stream rate (targets/s
received on joint_trajectory), each the median of --rounds rounds.

Usage:  python bench/teleop.py [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
from pathlib import Path
import random
import sys
import tempfile
import threading
import time

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_DOMAIN_ID', str(200 + os.getpid() % 30))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

import numpy as np  # noqa: E402

from robosandbox_control.units import joint_units, LEROBOT_SO101  # noqa: E402
from robosandbox_description.robot import load_robot  # noqa: E402
from robosandbox_hw.emulator import calibration_for, EmulatedBus, encoder_steps  # noqa: E402

ROBOT = load_robot('so101')
JOINTS = ROBOT.joints
HOME = np.array([ROBOT.home[j] for j in JOINTS])
STEP = 0.02                   # rad on shoulder_pan: one or two ticks of the follower's velocity limit
PAN = 1                       # servo id


class Timeline:
    """What the two buses and the hand saw, in monotonic time."""

    def __init__(self):
        self.reads: list[float] = []            # leader Present_Position answers
        self.goals: list[tuple[float, int]] = []    # follower shoulder_pan goals (raw)
        self.steps: list[tuple[float, int]] = []    # hand steps: time, direction
        self.lock = threading.Lock()

    def on_read(self, t: float) -> None:
        self.reads.append(t)

    def on_goal(self, t: float, servo: int, value: int) -> None:
        if servo == PAN:
            with self.lock:
                self.goals.append((t, value))

    def latencies(self, changes) -> np.ndarray:
        """For each hand step: first leader read after it -> first change after that read
        (``changes``: (time, direction) of the follower's moves)."""
        out = []
        for t_step, direction in self.steps:
            i = bisect.bisect_right(self.reads, t_step)
            if i == len(self.reads):
                continue
            t_read = self.reads[i]
            moved = [t for t, d in changes if t > t_read and d == direction]
            if moved and moved[0] - t_read < 0.5:
                out.append(moved[0] - t_read)
        return np.array(out)

    def goal_changes(self) -> list[tuple[float, int]]:
        with self.lock:
            goals = list(self.goals)
        return [(t, int(np.sign(v - goals[k - 1][1]))) for k, (t, v) in enumerate(goals)
                if k and v != goals[k - 1][1]]


def step_by_hand(bus: EmulatedBus, calibration: dict, timeline: Timeline, seconds: float) -> None:
    """The hand: shoulder_pan up and down by STEP at random intervals, the rest at home."""
    units = joint_units(LEROBOT_SO101, JOINTS, ROBOT.gripper_joint, ROBOT.gripper_range)
    rng = random.Random(0)
    pose, direction = HOME.copy(), 1
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(rng.uniform(0.15, 0.25))
        pose[0] += direction * STEP
        bus.turn_by_hand(encoder_steps(calibration, JOINTS, units.to_policy(pose)))
        timeline.steps.append((time.monotonic(), direction))
        direction = -direction


def place(bus, calibration, pose) -> None:
    units = joint_units(LEROBOT_SO101, JOINTS, ROBOT.gripper_joint, ROBOT.gripper_range)
    bus.turn_by_hand(encoder_steps(calibration, JOINTS, units.to_policy(pose)))


class Graph:
    """rclpy in this process: the stream's rate and the follower's joint_states."""

    def __init__(self):
        import rclpy
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory
        rclpy.init()
        self.rclpy = rclpy
        self.node = rclpy.create_node('teleop_bench')
        self.targets: list[float] = []
        self.states: list[tuple[float, float]] = []
        self.node.create_subscription(JointTrajectory, 'joint_trajectory',
                                      lambda _m: self.targets.append(time.monotonic()), 100)
        self.node.create_subscription(JointState, 'joint_states',
                                      lambda m: self.states.append((time.monotonic(), m.position[0])), 100)

    def spin_until(self, condition, timeout: float) -> bool:
        from robosandbox_control.spinning import spin_until
        return spin_until(self.node, condition, timeout)

    def spin_in_background(self):
        stop = threading.Event()

        def spin():
            while not stop.is_set():
                self.rclpy.spin_once(self.node, timeout_sec=0.05)
        thread = threading.Thread(target=spin, daemon=True)
        thread.start()
        return stop, thread

    def rate(self, start: float, end: float) -> float:
        n = sum(1 for t in self.targets if start <= t <= end)
        return n / (end - start)

    def close(self):
        self.node.destroy_node()
        self.rclpy.shutdown()


def run_ours(work: Path, calibration: dict, seconds: float, sim: bool) -> tuple[np.ndarray, float]:
    from robosandbox_cli.processes import NodeProcess
    timeline = Timeline()
    calibration_file = work / 'arm.json'
    leader = EmulatedBus(link=work / 'ttyLeader', on_position_read=timeline.on_read).start()
    follower = None if sim else EmulatedBus(link=work / 'ttyFollower', on_goal=timeline.on_goal).start()
    place(leader, calibration, HOME)
    if sim:
        backend = NodeProcess('robosandbox_sim', 'sim_node', 'use_sim_time:=true', 'cameras:=[front]',
                              'camera_width:=64', 'camera_height:=48')
    else:
        backend = NodeProcess('robosandbox_hw', 'so101_node', f'port:={follower.port}',
                              f'calibration_file:={calibration_file}', 'first_motion_velocity:=2.0')
    teleop = NodeProcess('robosandbox_teleop', 'so101_leader', f'port:={leader.port}',
                         f'calibration_file:={calibration_file}', 'approach_velocity:=1.0',
                         *(['use_sim_time:=true'] if sim else []))
    graph = Graph()
    try:
        if not graph.spin_until(lambda: graph.states and len(graph.targets) > 50
                                and abs(graph.states[-1][1] - HOME[0]) < 0.01, 120.0):
            raise RuntimeError(f'teleop did not start:\n{backend.output.text()}\n{teleop.output.text()}')
        stop, spinner = graph.spin_in_background()
        start = time.monotonic()
        step_by_hand(leader, calibration, timeline, seconds)
        end = time.monotonic()
        time.sleep(0.3)
        stop.set()
        spinner.join()
        if sim:
            states = graph.states
            changes = [(t, int(np.sign(q - states[k - 1][1]))) for k, (t, q) in enumerate(states)
                       if k and abs(q - states[k - 1][1]) > 2e-4]
        else:
            changes = timeline.goal_changes()
        return timeline.latencies(changes), graph.rate(start, end)
    finally:
        graph.close()
        teleop.close()
        backend.close()
        leader.stop()
        if follower:
            follower.stop()


def run_lerobot(work: Path, seconds: float, fps: float = 30.0) -> tuple[np.ndarray, float]:
    """LeRobot's teleoperation step (leader get_action, follower send_action) at ``fps``."""
    from lerobot.robots.so_follower import SOFollower, SOFollowerRobotConfig
    from lerobot.teleoperators.so_leader import SOLeader, SOLeaderTeleopConfig
    timeline = Timeline()
    calibration = json.loads((work / 'arm.json').read_text())
    leader_bus = EmulatedBus(link=work / 'ttyLeader', on_position_read=timeline.on_read).start()
    follower_bus = EmulatedBus(link=work / 'ttyFollower', on_goal=timeline.on_goal).start()
    place(leader_bus, calibration, HOME)
    leader = SOLeader(SOLeaderTeleopConfig(port=leader_bus.port, id='arm', calibration_dir=work))
    follower = SOFollower(SOFollowerRobotConfig(port=follower_bus.port, id='arm', calibration_dir=work,
                                                cameras={}))
    for device in (leader, follower):
        device.connect(calibrate=False)
        device.bus.write_calibration(device.calibration)
    if hasattr(follower.bus, 'enable_torque'):
        follower.bus.enable_torque()
    running, sent = True, []

    def loop():
        next_tick = time.monotonic()
        while running:
            follower.send_action(leader.get_action())
            sent.append(time.monotonic())
            next_tick += 1.0 / fps
            time.sleep(max(0.0, next_tick - time.monotonic()))
    thread = threading.Thread(target=loop, daemon=True)
    try:
        thread.start()
        time.sleep(1.0)
        start = time.monotonic()
        step_by_hand(leader_bus, calibration, timeline, seconds)
        end = time.monotonic()
        time.sleep(0.3)
        running = False
        thread.join()
        rate = sum(1 for t in sent if start <= t <= end) / (end - start)
        return timeline.latencies(timeline.goal_changes()), rate
    finally:
        running = False
        leader.disconnect()
        follower.disconnect()
        leader_bus.stop()
        follower_bus.stop()


def summary(results) -> str:
    p50 = np.median([1e3 * np.median(lat) for lat, _ in results])
    p99 = np.median([1e3 * np.percentile(lat, 99) for lat, _ in results])
    rate = np.median([r for _, r in results])
    steps = sum(len(lat) for lat, _ in results)
    return f'median {p50:5.1f} ms  p99 {p99:5.1f} ms  stream {rate:5.1f} /s  ({steps} steps)'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=10.0, help='hand stepping per round')
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()
    calibration = calibration_for(JOINTS, ROBOT.lower, ROBOT.upper)
    runs = {'ours (so101_leader -> so101_node, 100 Hz)': [], 'LeRobot loop (in process, 30 Hz)': [],
            'ours, leader -> sim joint_states': []}
    with tempfile.TemporaryDirectory(prefix='bench_teleop_') as tmp:
        work = Path(tmp)
        (work / 'arm.json').write_text(json.dumps(calibration))
        for r in range(args.rounds):        # interleaved: the machine's load hits all alike
            names = list(runs)
            runs[names[0]].append(run_ours(work, calibration, args.seconds, sim=False))
            runs[names[1]].append(run_lerobot(work, args.seconds))
            runs[names[2]].append(run_ours(work, calibration, args.seconds, sim=True))
            print(f'round {r + 1}/{args.rounds} done', file=sys.stderr, flush=True)
    print(f'leader read -> follower, emulated buses at 1 Mbps, {args.rounds} rounds x {args.seconds:g} s '
          f'of hand steps (medians over rounds):')
    for name, results in runs.items():
        print(f'  {name:44s} {summary(results)}')
    ours, lerobot = (np.median([np.median(lat) for lat, _ in runs[n]]) for n in list(runs)[:2])
    print(f'  ratio ours / LeRobot loop, median latency: {ours / lerobot:.2f} '
          f'(anchor: a remote leader arm reports ~150 ms per read)')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
