#!/usr/bin/env python3
"""Simulation node speed: real-time factor, camera rates, joint_states latency.

Runs the sim node in its own process (as a user would) and measures it from
this one through ROS:

  free       no camera subscribers, real_time_factor 0 (free-running)
  free_tf    the same with /tf subscribed (as RViz would), TF's cost per step
  cam240     one 240x320 camera at 30 Hz + joint_states at 100 Hz, real time
  cam480     480x640 front + wrist cameras at 30 Hz, real time

Usage:  python bench/sim_rtf.py [--duration 60] [--scenarios free cam240 cam480]
Prints one block per scenario; figures are medians unless said otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_DOMAIN_ID', str(150 + os.getpid() % 50))

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
import rclpy  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from robosandbox_cli.processes import ProcessGroup, resolve_executable  # noqa: E402
from robosandbox_control.qos import TF_QOS  # noqa: E402

SCENARIOS = {
    'free': dict(params={'real_time_factor': '0'}, cameras=[], size=(320, 240)),
    'free_tf': dict(params={'real_time_factor': '0'}, cameras=[], size=(320, 240), tf=True),
    'cam240': dict(params={'real_time_factor': '1.0', 'cameras': '[front]'}, cameras=['front'],
                   size=(320, 240)),
    'cam480': dict(params={'real_time_factor': '1.0', 'cameras': '[front, wrist]'},
                   cameras=['front', 'wrist'], size=(640, 480)),
}
WARMUP = 5.0  # s after the first message before measuring


class Devnull:
    def write(self, _):
        pass

    def flush(self):
        pass


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float('nan')


def cpu_seconds(pid: int) -> float:
    """User + system CPU time (s) a process has used so far (Linux /proc)."""
    fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def run(name: str, duration: float, beside: dict[str, list[str]] | None = None) -> dict:
    """Measure scenario ``name`` for ``duration`` s, with the processes ``beside``
    (name: argv) running next to the sim: their CPU use is reported as
    ``<name>_cpu`` (cores, over the measured window)."""
    spec = SCENARIOS[name]
    width, height = spec['size']
    params = dict(spec['params'], camera_width=str(width), camera_height=str(height), camera_rate='30.0')
    argv = resolve_executable('robosandbox_sim', 'sim_node') + ['--ros-args'] + [
        arg for k, v in params.items() for arg in ('-p', f'{k}:={v}')]
    group = ProcessGroup(out=Devnull())
    group.start('sim', argv)
    others = {other: group.start(other, command) for other, command in (beside or {}).items()}
    node = rclpy.create_node(f'bench_{name}')
    diag, images, latency = [], {c: [] for c in spec['cameras']}, []
    state = {'measuring': False, 'joint_states': 0, 'tf': 0}

    def on_diag(msg):
        if state['measuring']:
            diag.append({kv.key: kv.value for kv in msg.status[0].values})

    def on_joints(msg, info):
        if state['measuring']:
            state['joint_states'] += 1
            latency.append((info['received_timestamp'] - info['source_timestamp']) * 1e-6)

    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)
    if spec['cameras']:
        # Free-running publishes joint_states at ~2 kHz wall; subscribing there
        # would measure this process, not the node. Latency comes from the
        # paced scenarios.
        node.create_subscription(JointState, 'joint_states', on_joints, 100)
    if spec.get('tf'):
        # Raw: count the messages without deserialising them, so this process
        # takes as little of the 2 cores as a subscriber can.
        def on_tf(_msg):
            state['tf'] += state['measuring']
        node.create_subscription(TFMessage, '/tf', on_tf, TF_QOS, raw=True)
    for cam in spec['cameras']:
        node.create_subscription(
            Image, f'cameras/{cam}/image_raw',
            lambda msg, cam=cam: state['measuring'] and images[cam].append(time.monotonic()),
            qos_profile_sensor_data)
    try:
        # Wait for the node, warm up, then measure.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and node.count_publishers('/diagnostics') == 0:
            rclpy.spin_once(node, timeout_sec=0.1)
        end_warmup = time.monotonic() + WARMUP
        while time.monotonic() < end_warmup:
            rclpy.spin_once(node, timeout_sec=0.05)
        state['measuring'] = True
        start = time.monotonic()
        cpu_start = {other: cpu_seconds(child.process.pid) for other, child in others.items()}
        while time.monotonic() - start < duration:
            rclpy.spin_once(node, timeout_sec=0.05)
        elapsed = time.monotonic() - start
        cpu = {f'{other}_cpu': (cpu_seconds(child.process.pid) - cpu_start[other]) / elapsed
               for other, child in others.items()}
    finally:
        node.destroy_node()
        group.shutdown()

    rtf = [float(d['real_time_factor']) for d in diag]
    tf_cost = [float(d['tf_publish_p50_ms']) for d in diag if 'tf_publish_p50_ms' in d]
    result = {
        **cpu,
        'tf_hz': state['tf'] / elapsed,
        'tf_publish_p50_ms': statistics.median(tf_cost) if tf_cost else float('nan'),
        'rtf_median': statistics.median(rtf) if rtf else float('nan'),
        'rtf_min': min(rtf) if rtf else float('nan'),
        'joint_states_hz': state['joint_states'] / elapsed,
        'dds_latency_p50_ms': percentile(latency, 0.5),
        'dds_latency_p99_ms': percentile(latency, 0.99),
        'step_to_publish_p50_ms': statistics.median(
            float(d.get('joint_states_publish_latency_p50_ms', 'nan')) for d in diag) if diag else float('nan'),
        'step_to_publish_p99_ms': max(
            float(d.get('joint_states_publish_latency_p99_ms', 'nan')) for d in diag) if diag else float('nan'),
    }
    for cam, stamps in images.items():
        result[f'{cam}_hz'] = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return result


def bare_mujoco_rtf(seconds: float = 5.0) -> float:
    """Real-time factor of mj_step alone on the same scene, for the overhead ratio."""
    from robosandbox_sim.simulation import Simulation
    sim = Simulation('so101', 'pick_cube', 0)
    sim.step(500)
    start, t0 = time.perf_counter(), sim.time
    while time.perf_counter() - start < seconds:
        sim.step(100)
    rtf = (sim.time - t0) / (time.perf_counter() - start)
    sim.close()
    return rtf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--duration', type=float, default=60.0, help='seconds measured per scenario')
    parser.add_argument('--scenarios', nargs='+', default=list(SCENARIOS), choices=list(SCENARIOS))
    args = parser.parse_args()
    rclpy.init()
    try:
        for name in args.scenarios:
            r = run(name, args.duration)
            print(f'== {name} ({args.duration:g} s, {os.cpu_count()} cores)')
            print(f'  real-time factor: median {r["rtf_median"]:.2f}, min {r["rtf_min"]:.2f} '
                  f'(1 s windows)')
            if name.startswith('free'):
                bare = bare_mujoco_rtf()
                print(f'  bare MuJoCo on the same scene: real-time factor {bare:.1f}; '
                      f'node overhead {bare / r["rtf_median"]:.2f}x')
            if name == 'free_tf':
                # /tf goes out with joint_states: 100 Hz of sim time, one per 5 physics steps.
                print(f'  /tf: {r["tf_hz"]:.0f} messages/s received; building and sending one takes '
                      f'{r["tf_publish_p50_ms"]:.3f} ms (median), '
                      f'{r["tf_publish_p50_ms"] / 5:.3f} ms per 2 ms physics step')
            if name.startswith('free'):
                continue
            print(f'  joint_states: {r["joint_states_hz"]:.1f} Hz received')
            print(f'  joint_states latency: step->publish p50 {r["step_to_publish_p50_ms"]:.3f} ms, '
                  f'p99 {r["step_to_publish_p99_ms"]:.3f} ms (in the node); '
                  f'publish->receive p50 {r["dds_latency_p50_ms"]:.3f} ms, '
                  f'p99 {r["dds_latency_p99_ms"]:.3f} ms (subscriber process)')
            for key in r:
                if key.endswith('_hz') and key != 'joint_states_hz':
                    cam = key.removesuffix('_hz')
                    print(f'  camera {cam}: {r[key]:.2f} Hz '
                          f'({100 * (r[key] - 30) / 30:+.1f}% of 30 Hz)')
    finally:
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
