#!/usr/bin/env python3
"""What the viewer costs the graph it watches: the sim with and without it.

The sim node runs one 240x320 camera at 30 Hz in real time (sim_rtf.py's cam240);
"with" adds the viewer node (robosandbox_viewer), serving its web viewer on
localhost and logging the robot, /tf, the camera and the joint series, as
`robosandbox launch sim viewer:=true` runs it (no browser attached: a browser's
rendering is the watcher's cost, not the graph's). Runs alternate without / with,
--repeats times each, on this noisy 2-core machine; it prints the medians, their
ratio, and the viewer's CPU. Target (issue 13): at most 5 % lower with the viewer.

  python bench/viewer.py [--duration 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import statistics
import sys

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rclpy  # noqa: E402

from robosandbox_cli.processes import free_port, resolve_executable  # noqa: E402
from sim_rtf import run  # noqa: E402



def viewer_command() -> list[str]:
    return resolve_executable('robosandbox_viewer', 'viewer') + [
        '--ros-args', '-p', 'use_sim_time:=true', '-p', f'web_port:={free_port()}', '-p', f'grpc_port:={free_port()}']


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--duration', type=float, default=30.0, help='seconds measured per run')
    parser.add_argument('--repeats', type=int, default=3, help='runs without and with the viewer, alternating')
    args = parser.parse_args()
    rclpy.init()
    runs = {'without': [], 'with': []}
    try:
        for i in range(args.repeats):
            runs['without'].append(run('cam240', args.duration))
            runs['with'].append(run('cam240', args.duration, beside={'viewer': viewer_command()}))
            print(f'run {i + 1}: without rtf {runs["without"][-1]["rtf_median"]:.3f} camera '
                  f'{runs["without"][-1]["front_hz"]:.2f} Hz | with rtf {runs["with"][-1]["rtf_median"]:.3f} '
                  f'camera {runs["with"][-1]["front_hz"]:.2f} Hz, viewer {runs["with"][-1]["viewer_cpu"]:.2f} cores',
                  flush=True)
    finally:
        rclpy.try_shutdown()

    def median(kind, key):
        return statistics.median(r[key] for r in runs[kind])

    print(f'== viewer cost: sim, one 240x320 camera at 30 Hz, real time ({args.repeats} x {args.duration:g} s '
          f'each, alternating; {os.cpu_count()} cores; medians)')
    for key, what in (('rtf_median', 'real-time factor'), ('front_hz', 'camera rate, Hz'),
                      ('joint_states_hz', 'joint_states, Hz')):
        without, with_ = median('without', key), median('with', key)
        print(f'  {what:18s} without {without:7.3f}   with {with_:7.3f}   with/without {with_ / without:.3f}')
    print(f'  viewer CPU: {median("with", "viewer_cpu"):.2f} cores')


if __name__ == '__main__':
    main()
