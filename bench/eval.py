#!/usr/bin/env python3
"""``robosandbox eval`` wall time per episode: lockstep against real time.

Runs ``robosandbox eval`` as a user does (a fresh sim, policy node and episode
runner per evaluation) for each policy in lockstep and in real time, --rounds
times interleaved, and prints the median wall time per episode (start-up
excluded: the time between the first and the last episode line), the success
rate and the missed ticks of each mode, side by side. Lockstep runs as fast as
physics, rendering and the policy allow; real time is the reference: one
second of sim time per second.

  expert  the scripted expert on pick_cube (success ends an episode, ~3.5 s of sim time)
  act     an untrained ACT of the size the issue's first trial trained (dim_model 256,
          2 encoder / 1 decoder layers, chunk 30, one 96x128 camera), for --act-seconds
          of sim time per episode (untrained: it never succeeds)

Usage:  python bench/eval.py [--episodes 5] [--rounds 3] [--policies expert act]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_DOMAIN_ID', str(150 + os.getpid() % 50))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

HOME = np.array([0.0, -1.2, 1.1, 1.1, 0.0, 0.0])
EPISODE_LINE = re.compile(r'\] episode (\d+)/(\d+) ')


def evaluate(out: Path, policy: str, episodes: int, real_time: bool, extra: list[str]) -> dict:
    command = [sys.executable, '-m', 'robosandbox_cli.main', 'eval', '--policy', policy,
               '--episodes', str(episodes + 1), '--out', str(out), *extra]
    if real_time:
        command.append('--real-time')
    stamps = []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if EPISODE_LINE.search(line):
            stamps.append(time.perf_counter())
    if process.wait() != 0:
        raise RuntimeError(f'{" ".join(command)} failed')
    summary = json.loads((out / 'summary.json').read_text())
    # Episode 1 also pays for the first inferences, renders and DDS discovery: time the rest.
    return {'per_episode': (stamps[-1] - stamps[0]) / episodes, 'success_rate': summary['success_rate'],
            'missed_ticks': summary['missed_ticks'] / (episodes + 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--episodes', type=int, default=5, help='timed episodes per evaluation')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--policies', nargs='+', default=['expert', 'act'], choices=['expert', 'act'])
    parser.add_argument('--act-seconds', type=float, default=5.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        policies = {}
        if 'expert' in args.policies:
            policies['expert'] = ('expert', [])
        if 'act' in args.policies:
            from robosandbox_policy.random_checkpoint import write_random_act
            checkpoint = write_random_act(tmp / 'act', {'front': (96, 128)}, HOME, dim_model=256,
                                          n_encoder_layers=2, n_decoder_layers=1, chunk_size=30,
                                          n_action_steps=30)
            policies['act'] = (str(checkpoint), [f'max_duration:={args.act_seconds}', 'camera_width:=128',
                                                 'camera_height:=96'])
        results = {(name, mode): [] for name in policies for mode in ('lockstep', 'real time')}
        for r in range(args.rounds):
            for name, (policy, extra) in policies.items():
                for mode in ('lockstep', 'real time'):
                    out = tmp / f'{name}-{mode.replace(" ", "_")}-{r}'
                    results[name, mode].append(evaluate(out, policy, args.episodes, mode == 'real time', extra))
                    print(f'round {r + 1}: {name} {mode}: {results[name, mode][-1]}', flush=True)

    print(f'\nrobosandbox eval, wall time per episode (median of {args.rounds} rounds of '
          f'{args.episodes} episodes; first episode excluded)')
    print(f'{"policy":8} {"lockstep s":>11} {"real time s":>12} {"ratio":>6}  {"success lockstep/rt":>20}  '
          f'{"missed ticks/episode lockstep/rt":>33}')
    for name in policies:
        lock, rt = results[name, 'lockstep'], results[name, 'real time']
        lock_t = statistics.median(x['per_episode'] for x in lock)
        rt_t = statistics.median(x['per_episode'] for x in rt)
        success = f'{statistics.median(x["success_rate"] for x in lock):.2f}/' \
                  f'{statistics.median(x["success_rate"] for x in rt):.2f}'
        missed = f'{statistics.median(x["missed_ticks"] for x in lock):.1f}/' \
                 f'{statistics.median(x["missed_ticks"] for x in rt):.1f}'
        print(f'{name:8} {lock_t:11.2f} {rt_t:12.2f} {lock_t / rt_t:6.2f}  {success:>20}  {missed:>33}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
