#!/usr/bin/env python3
"""SO-101 bus loop rate and command-to-bus latency, against the emulated STS bus.

  loop     So101Bus (LeRobot's FeetechMotorsBus underneath) reading
           Present_Position and writing Goal_Position of 6 servos as fast as
           it can for --seconds, the emulator in its own process paying each
           packet's wire time at 1 Mbps. Figures: median cycle rate, and the
           bus's theoretical limit for the same packets (bytes x 10 bits / baud).
  latency  so101_node in its own process at its default 100 Hz loop; this
           process publishes one-point joint_trajectory commands and the
           emulator (here) timestamps the first Goal_Position write that
           carries each one. Figures: median and p99, ms.

Usage:  python bench/hw_loop.py [--seconds 10] [--commands 200]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_DOMAIN_ID', str(200 + os.getpid() % 30))

import numpy as np  # noqa: E402

from robosandbox_hw.emulator import calibration_for, EmulatedBus  # noqa: E402
from robosandbox_hw.so101_bus import JOINTS, So101Bus, So101BusConfig  # noqa: E402
from robosandbox_description.robot import load_robot  # noqa: E402

BAUD = 1_000_000
EMULATOR = '''
import sys, time
from robosandbox_hw.emulator import EmulatedBus
with EmulatedBus(baudrate=int(sys.argv[2]), link=sys.argv[1]):
    print('ready', flush=True)
    sys.stdin.read()
'''


def bus_limit_hz(servos: int = 6, data: int = 2, return_delay_us: float = 0.0) -> tuple[float, int]:
    """Cycles/s the wire allows for one sync read and one sync write of ``data`` bytes."""
    read_request = 8 + servos                    # FF FF FE len 82 addr n ids... chk
    status = servos * (6 + data)                 # FF FF id len err data chk, per servo
    write = 8 + servos * (1 + data)              # FF FF FE len 83 addr n (id data)... chk
    total = read_request + status + write
    seconds = total * 10 / BAUD + servos * return_delay_us * 1e-6
    return 1.0 / seconds, total


def measure_loop(work: Path, calibration: Path, gripper_range, seconds: float) -> None:
    link = work / 'ttyLoop'
    emulator = subprocess.Popen([sys.executable, '-c', EMULATOR, str(link), str(BAUD)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert emulator.stdout.readline().strip() == 'ready'
        bus = So101Bus(So101BusConfig(port=str(link), calibration_file=calibration,
                                      gripper_range=gripper_range))
        bus.connect()
        bus.set_torque(True)
        goal = bus.read_positions()
        periods, last = [], time.perf_counter()
        end = last + seconds
        while last < end:
            q = bus.read_positions()
            goal[0] = 0.2 * np.sin(last)
            bus.write_goals(goal)
            now = time.perf_counter()
            periods.append(now - last)
            last = now
        bus.close()
        limit, size = bus_limit_hz()
        rate = 1.0 / float(np.median(periods))
        print(f'loop: read 6 positions + write 6 goals at {rate:.0f} Hz median '
              f'({len(periods)} cycles, p99 period {1e3 * np.percentile(periods, 99):.2f} ms, '
              f'final state {np.round(q, 3).tolist()}); bus limit {limit:.0f} Hz '
              f'({size} bytes per cycle at {BAUD // 1000} kbps, return delay 0); '
              f'ratio {rate / limit:.2f}; retries {bus.counters.retries}, failures {bus.counters.failures}')
    finally:
        emulator.stdin.close()
        emulator.wait(timeout=10)


def measure_latency(work: Path, calibration: Path, commands: int) -> None:
    import rclpy
    from builtin_interfaces.msg import Duration
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from robosandbox_cli.processes import NodeProcess
    from robosandbox_control.spinning import spin_until

    writes: list[tuple[float, int]] = []

    def on_goal(t: float, servo: int, value: int) -> None:
        if servo == 1:
            writes.append((t, value))

    with EmulatedBus(link=work / 'ttyNode', baudrate=BAUD, on_goal=on_goal) as emulator:
        node = NodeProcess('robosandbox_hw', 'so101_node', f'port:={emulator.port}',
                           f'calibration_file:={calibration}', 'first_motion_velocity:=2.0')
        rclpy.init()
        client = rclpy.create_node('hw_loop_bench')
        states = []
        client.create_subscription(JointState, 'joint_states', states.append, 10)
        publisher = client.create_publisher(JointTrajectory, 'joint_trajectory', 10)
        try:
            assert spin_until(client, lambda: states and publisher.get_subscription_count(), 60.0), \
                node.output.text()
            base = np.array(states[-1].position)
            latencies = []
            for k in range(commands):
                target = base.copy()
                target[0] += 0.01 if k % 2 == 0 else -0.01   # within one tick of the velocity limit
                spin_until(client, lambda: False, 0.05)
                before = writes[-1][1]
                sent = time.monotonic()
                publisher.publish(JointTrajectory(joint_names=list(JOINTS), points=[
                    JointTrajectoryPoint(positions=target.tolist(), time_from_start=Duration())]))
                deadline = sent + 1.0
                while time.monotonic() < deadline:
                    arrived = [t for t, v in writes[-20:] if t > sent and v != before]
                    if arrived:
                        latencies.append(arrived[0] - sent)
                        break
                    time.sleep(0.0005)
            ms = 1e3 * np.array(latencies)
            print(f'latency: joint_trajectory publish -> Goal_Position on the bus, {len(ms)} of '
                  f'{commands} commands: median {np.median(ms):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms '
                  f'(node loop 100 Hz: up to 10 ms is waiting for the next cycle)')
        finally:
            client.destroy_node()
            rclpy.shutdown()
            node.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--commands', type=int, default=200)
    args = parser.parse_args()
    robot = load_robot('so101')
    with tempfile.TemporaryDirectory(prefix='bench_hw_') as tmp:
        work = Path(tmp)
        calibration = work / 'so101.json'
        calibration.write_text(json.dumps(
            calibration_for(JOINTS, robot.lower, robot.upper)))
        measure_loop(work, calibration, robot.gripper_range, args.seconds)
        measure_latency(work, calibration, args.commands)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
