#!/usr/bin/env python3
"""Policy node speed: overhead per tick, ACT at 30 Hz, scripted expert success.

Every node runs in its own process, as a user runs them; this process is the
client and reads the policy node's /diagnostics.

  overhead   sim (real time, front camera 240x320) + policy node with a trivial
             policy: ``hold`` (ticks on joint_states) and an ACT whose queue is
             full (ticks on images; act() is a queue pop). Figures: input
             arrival -> target published, minus the policy's own act() time.
  act        default-config ACT (untrained, one 240x320 camera) at 30 Hz for
             --duration s of sim time: missed ticks, and the node's inference
             time against LeRobot's bare ``predict_action`` in LeRobot's own
             loop (called every tick, a full inference when the queue is empty)
             on the same checkpoint, thread count and sim load.
  expert     ``robosandbox launch sim_policy`` over --episodes seeds: success
             rate and wall time per episode.

Usage:  python bench/policy_loop.py [--duration 60] [--episodes 20] [--scenarios ...] [--in-process]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import re
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_DOMAIN_ID', str(150 + os.getpid() % 50))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from robosandbox_cli.processes import ProcessGroup, resolve_executable  # noqa: E402
from robosandbox_control.clients import run_goal  # noqa: E402
from robosandbox_control.spinning import spin_until  # noqa: E402
from robosandbox_msgs.action import RunPolicy  # noqa: E402
from robosandbox_policy.random_checkpoint import write_random_act  # noqa: E402

HOME = np.array([0.0, -1.2, 1.1, 1.1, 0.0, 0.0])
TORCH_THREADS = 1
VERBOSE = '--verbose' in sys.argv
INFERENCE_PROCESS = '--in-process' not in sys.argv


class Devnull:
    def write(self, _):
        pass

    def flush(self):
        pass


def node_argv(package, executable, **params):
    return resolve_executable(package, executable) + ['--ros-args'] + [
        arg for k, v in params.items() for arg in ('-p', f'{k}:={v}')]


class Client:
    instances = 0

    def __init__(self):
        Client.instances += 1
        self.node = rclpy.create_node(f'policy_bench_{Client.instances}')
        self.diag = {}
        self.images = 0
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.run = ActionClient(self.node, RunPolicy, 'policy/run')

    def _on_diag(self, msg):
        for status in msg.status:
            if status.hardware_id == 'policy':
                self.diag = {kv.key: kv.value for kv in status.values}

    def watch_camera(self):
        def count(_):
            self.images += 1
        return self.node.create_subscription(Image, 'cameras/front/image_raw', count,
                                             qos_profile_sensor_data)

    def run_policy(self, **goal):
        result = run_goal(self.node, self.run, RunPolicy.Goal(**goal), 600.0, server_timeout=120.0)
        spin_until(self.node, lambda: False, 1.5)   # one more diagnostics message
        return result

    def close(self):
        self.node.destroy_node()


def start_sim(group):
    return group.start('sim', node_argv('robosandbox_sim', 'sim_node', cameras='[front]',
                                        camera_width=320, camera_height=240))


def start_policy(group, policy):
    return group.start('policy', node_argv('robosandbox_policy', 'policy_node', policy=policy,
                                           torch_threads=TORCH_THREADS,
                                           inference_process=INFERENCE_PROCESS) + ['-r', '__node:=policy'])


def overhead(checkpoint: Path, duration: float) -> None:
    for label, policy in (('hold (joint_states trigger)', 'hold'),
                          ('ACT queue pop (image trigger)', str(checkpoint))):
        group = ProcessGroup(out=Devnull())
        client = Client()
        try:
            start_sim(group)
            start_policy(group, policy)
            result = client.run_policy(max_duration=duration)
            d = client.diag
            print(f'  {label}: {result.steps} ticks; overhead p50 {d["overhead_p50_ms"]} ms, '
                  f'p99 {d["overhead_p99_ms"]} ms (target <= 2 / <= 10)', flush=True)
        finally:
            client.close()
            group.shutdown()


def bare_predict_action(checkpoint: Path, duration: float) -> tuple[list[float], list[float]]:
    """LeRobot's own inference path on the same checkpoint: ``predict_action`` called as
    LeRobot's control loop calls it, once per tick at the checkpoint's rate for
    ``duration`` s (a full inference whenever ACT's queue is empty, a queue pop otherwise),
    and 20 full inferences back to back. The times of the full inferences, s, for each.

    The loop is the reference: the node also infers once per chunk, and an inference
    after seconds of other work on the machine takes longer (its weights and buffers
    out of the caches) than one right after another (~10 % here with the sim running)."""
    import torch
    from lerobot.common.control_utils import predict_action
    from robosandbox_policy.checkpoint import load
    torch.set_num_threads(TORCH_THREADS)
    loaded = load(str(checkpoint))
    policy = loaded.policy
    obs = {'observation.state': HOME.astype(np.float32),
           'observation.images.front': np.full((240, 320, 3), 128, np.uint8)}

    def call():
        start = time.perf_counter()
        predict_action(dict(obs), policy, torch.device('cpu'), loaded.preprocessor,
                       loaded.postprocessor, use_amp=False, task='pick up the red cube')
        return time.perf_counter() - start

    back_to_back = []
    for _ in range(22):
        policy.reset()
        back_to_back.append(call())
    period, loop = 1.0 / loaded.fps, []
    policy.reset()
    next_tick = time.perf_counter()
    for _ in range(round(duration / period)):
        infers = len(policy._action_queue) == 0
        elapsed = call()
        if infers:
            loop.append(elapsed)
        next_tick += period
        time.sleep(max(0.0, next_tick - time.perf_counter()))
    return loop[1:], back_to_back[2:]


def act(checkpoint: Path, duration: float) -> None:
    group = ProcessGroup(out=Devnull() if not VERBOSE else None)
    client = Client()
    try:
        start_sim(group)
        watcher = client.watch_camera()          # the sim renders while someone watches
        spin_until(client.node, lambda: client.images > 30, 60)
        bare, warm = bare_predict_action(checkpoint, duration)
        client.node.destroy_subscription(watcher)
        start_policy(group, str(checkpoint))
        result = client.run_policy(max_duration=duration)
        d = client.diag
        node_p50 = float(d['inference_p50_ms'])
        bare_p50 = 1e3 * statistics.median(bare)
        warm_p50 = 1e3 * statistics.median(warm)
        print(f'  {result.steps} ticks in {result.elapsed:.1f} s of sim time, '
              f'missed ticks {result.missed_ticks} (target 0)')
        print(f'  inference in the node: p50 {node_p50:.1f} ms, p99 {d["inference_p99_ms"]} ms, '
              f'{d["inferences"]} chunks')
        print("  bare LeRobot predict_action in a loop at the checkpoint's rate: "
              f'p50 {bare_p50:.1f} ms ({len(bare)} chunks); back to back: p50 {warm_p50:.1f} ms')
        print(f'  node / bare: {node_p50 / bare_p50:.3f} (target <= 1.10); '
              f'node / back to back: {node_p50 / warm_p50:.3f}')
        print(f'  per-tick node overhead p50 {d["overhead_p50_ms"]} ms, p99 {d["overhead_p99_ms"]} ms')
    finally:
        client.close()
        group.shutdown()


def expert(episodes: int) -> None:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, '-m', 'robosandbox_cli.main', 'launch', 'sim_policy',
         f'episodes:={episodes}', 'seed:=100'], capture_output=True, text=True, timeout=60 * episodes)
    wall = time.perf_counter() - start
    verdicts = re.findall(r'episode \d+/\d+ \S+ seed \d+: (\w+) after ([\d.]+) s', out.stdout)
    if out.returncode != 0 or len(verdicts) != episodes:
        print(out.stdout[-3000:])
        raise SystemExit('sim_policy failed')
    successes = sum(v == 'SUCCESS' for v, _ in verdicts)
    sim_times = [float(t) for _, t in verdicts]
    print(f'  success {successes}/{episodes} = {100 * successes / episodes:.0f} % (target >= 95 %)')
    print(f'  wall time per episode {wall / episodes:.2f} s (whole bringup incl. start-up: '
          f'{wall:.1f} s); sim time to success median {statistics.median(sim_times):.2f} s')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration', type=float, default=60.0)
    parser.add_argument('--episodes', type=int, default=20)
    parser.add_argument('--scenarios', nargs='+', default=['overhead', 'act', 'expert'])
    parser.add_argument('--verbose', action='store_true', help="show the nodes' output")
    parser.add_argument('--in-process', action='store_true',
                        help="infer in the node's process (inference_process:=false), for comparison")
    args = parser.parse_args()
    rclpy.init()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if {'overhead', 'act'} & set(args.scenarios):
            checkpoint = write_random_act(Path(tmp) / 'act', {'front': (240, 320)}, HOME)
        for name in args.scenarios:
            print(f'[{name}]', flush=True)
            if name == 'overhead':
                overhead(checkpoint, min(args.duration, 30.0))
            elif name == 'act':
                act(checkpoint, args.duration)
            elif name == 'expert':
                expert(args.episodes)
    rclpy.shutdown()


if __name__ == '__main__':
    main()
