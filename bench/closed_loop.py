#!/usr/bin/env python3
"""The learning loop in one command: record, export, train, evaluate.

  1. record    `robosandbox launch sim_record` of the scripted expert on pick_cube,
               lockstep, cameras at --width x --height, seeds 0 .. N-1
  2. export    `robosandbox export-lerobot` of the successful episodes (LeRobot v3)
  3. train     `lerobot-train` with the configuration shipped in robosandbox_bringup
               (config/train/act_pick_cube.yaml), on this machine's CPU unless told
  4. evaluate  `robosandbox eval` of the last checkpoint through the policy node,
               lockstep, on seeds from 100000: never one the expert recorded

Every stage is a command a user runs, printed before it runs; a stage whose output
is already in --work is skipped, so an interrupted run resumes. It prints each
stage's wall time, the training loss curve (from lerobot-train's log) and the
evaluation's success rate with its Wilson interval, and writes them to
--work/closed_loop.json.

  python bench/closed_loop.py                          # the full loop (hours on 2 cores)
  python bench/closed_loop.py --toy --work /tmp/toy    # the chain at toy scale (minutes)
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import re
import shlex
import subprocess
import sys
import time

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('HF_HUB_OFFLINE', '1')

TRAIN_CONFIG = Path('config') / 'train' / 'act_pick_cube.yaml'
LOSS = re.compile(r'\bstep:\s*(\S+)\s.*?\bloss:\s*([0-9.]+)')
TOY = {'episodes': 2, 'steps': 3, 'eval_episodes': 1, 'batch_size': 2, 'max_duration': 1.0}


def train_config() -> Path:
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory('robosandbox_bringup')) / TRAIN_CONFIG


def run(command: list[str], log: Path | None = None) -> str:
    print('$ ' + shlex.join(command), flush=True)
    process = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if log is not None:
        log.write_text(process.stdout)
    if process.returncode != 0:
        print(process.stdout[-4000:], file=sys.stderr)
        raise SystemExit(f'stage failed ({process.returncode}): {shlex.join(command)}')
    return process.stdout


def robosandbox(*args: str) -> list[str]:
    return [sys.executable, '-m', 'robosandbox_cli.main', *args]


def checkpoint_of(train_dir: Path) -> Path:
    return train_dir / 'checkpoints' / 'last' / 'pretrained_model'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work', type=Path, default=Path('closed_loop'), help='where every stage writes')
    parser.add_argument('--episodes', type=int, default=60, help='expert episodes to record')
    parser.add_argument('--width', type=int, default=128)
    parser.add_argument('--height', type=int, default=96)
    parser.add_argument('--steps', type=int, default=4000, help='training steps')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', default='cpu', help='training and inference device (cuda on a GPU machine)')
    parser.add_argument('--eval-episodes', type=int, default=50)
    parser.add_argument('--max-duration', type=float, default=0.0, help='evaluation episode limit, s (0: the task\'s)')
    parser.add_argument('--toy', action='store_true',
                        help=f'the chain at toy scale ({TOY}): checks each stage hands the next what it needs')
    args = parser.parse_args()
    if args.toy:
        for key, value in TOY.items():
            setattr(args, key, value)

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    runs, dataset, train_dir, evaluation = work / 'runs', work / 'dataset', work / 'train', work / 'eval'
    times: dict[str, float] = {}

    def stage(name: str, done: bool, *commands: tuple[list[str], Path | None]) -> None:
        if done:
            print(f'[{name}] already done in {work}; skipped', flush=True)
            return
        start = time.perf_counter()
        for command, log in commands:
            run(command, log)
        times[name] = time.perf_counter() - start
        print(f'[{name}] {times[name]:.0f} s', flush=True)

    stage('record', runs.is_dir() and len(list(runs.iterdir())) >= args.episodes, (robosandbox(
        'launch', 'sim_record', f'episodes:={args.episodes}', 'seed:=0', 'lockstep:=true',
        f'camera_width:={args.width}', f'camera_height:={args.height}', f'runs_dir:={runs}'), None))
    stage('export', (dataset / 'meta' / 'info.json').is_file(), (robosandbox(
        'export-lerobot', str(runs), str(dataset), '--repo-id', 'local/pick_cube', '--no-progress'), None))
    train_log = work / 'train.log'
    stage('train', checkpoint_of(train_dir).is_dir(), ([
        str(Path(sys.executable).parent / 'lerobot-train'), f'--config_path={train_config()}',
        '--dataset.repo_id=local/pick_cube',
        f'--dataset.root={dataset}', f'--output_dir={train_dir}', f'--steps={args.steps}',
        f'--batch_size={args.batch_size}', f'--policy.device={args.device}',
        f'--save_freq={max(1, args.steps // 4)}', f'--log_freq={max(1, min(100, args.steps))}'], train_log))
    eval_args = ['eval', '--policy', str(checkpoint_of(train_dir)), '--episodes', str(args.eval_episodes),
                 '--seed', '100000', '--out', str(evaluation), f'device:={args.device}', 'torch_threads:=2']
    if args.max_duration:
        eval_args.append(f'max_duration:={args.max_duration}')
    eval_args += [f'camera_width:={args.width}', f'camera_height:={args.height}']
    stage('evaluate', (evaluation / 'summary.json').is_file(), (robosandbox(*eval_args), None))

    losses = [(step, float(loss)) for step, loss in LOSS.findall(train_log.read_text())] \
        if train_log.is_file() else []
    summary = json.loads((evaluation / 'summary.json').read_text())
    result = {'stage_seconds': times, 'episodes_recorded': args.episodes, 'training_steps': args.steps,
              'loss': losses, 'evaluation': {k: summary[k] for k in (
                  'episodes', 'successes', 'success_rate', 'ci95', 'median_time_to_success')}}
    (work / 'closed_loop.json').write_text(json.dumps(result, indent=2) + '\n')
    low, high = summary['ci95']
    print(f"\nclosed loop: {args.episodes} expert episodes, {args.steps} training steps"
          + (f", final loss {losses[-1][1]:.3f}" if losses else '')
          + f"; {summary['successes']}/{summary['episodes']} evaluation episodes succeeded "
          f"({100 * summary['success_rate']:.0f} %, 95 % CI {100 * low:.0f}-{100 * high:.0f} %)")
    print('stage wall times: ' + ', '.join(f'{k} {v:.0f} s' for k, v in times.items()))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
