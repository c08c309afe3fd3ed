#!/usr/bin/env python3
"""The learning loop in one command: record, export, train, evaluate.

  1. record    `robosandbox launch sim_record` of the scripted expert on pick_cube,
               lockstep, cameras at --width x --height, seeds 0 .. N-1
  2. export    `robosandbox export-lerobot` of the successful episodes (LeRobot v3);
               --inputs state: no image, the cube's pose as observation.environment_state
  3. train     `lerobot-train` with the configuration shipped in robosandbox_bringup
               (config/train/act_pick_cube.yaml, or act_pick_cube_state.yaml for
               --inputs state), on this machine's CPU unless told
  4. evaluate  `robosandbox eval` of the last checkpoint through the policy node,
               lockstep, on seeds from 100000: never one the expert recorded.
               With --select N, every kept checkpoint is first evaluated on N
               validation seeds from 200000 and the best one is evaluated; the
               test seeds never choose the checkpoint they measure.

Every stage is a command a user runs, printed before it runs; a stage whose output
is already in --work is skipped, so an interrupted run resumes. It prints each
stage's wall time, the training loss curve (from lerobot-train's log) and the
evaluation's success rate with its Wilson interval, and writes them to
--work/closed_loop.json.

  python bench/closed_loop.py                          # the full loop (hours on 2 cores)
  python bench/closed_loop.py --inputs state           # state-based: joints and the cube's pose
  python bench/closed_loop.py --inputs state --curve   # and success at every kept checkpoint
  python bench/closed_loop.py --inputs state --select 20   # the checkpoint chosen on 20 validation seeds

It prints each stage's wall time, the training loss and the evaluation's success rate
with its Wilson interval, and writes them to --work/closed_loop[_state].json, with a
plot of loss (and, with --curve, success) against training steps beside it.
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

import yaml

from robosandbox_cli.environment import ros_environment

# As the robosandbox command does: runs from .venv/bin/python without activating the venv.
os.environ.update(ros_environment())
os.environ.setdefault('HF_HUB_OFFLINE', '1')

TRAIN_CONFIGS = {'images': 'act_pick_cube.yaml', 'state': 'act_pick_cube_state.yaml'}
REPO_IDS = {'images': 'local/pick_cube', 'state': 'local/pick_cube_state'}
EXPORT_OPTIONS = {'images': [], 'state': ['--environment-state', '--no-cameras']}
LOSS = re.compile(r'\bstep:\s*(\S+)\s.*?\bloss:\s*([0-9.]+)')
TEST_SEED = 100000          # evaluation seeds: never recorded, never used to choose
VALIDATION_SEED = 200000    # seeds that choose the checkpoint (--select)
TOY = {'episodes': 2, 'steps': 3, 'eval_episodes': 1, 'batch_size': 2, 'max_duration': 1.0}


def train_config(inputs: str) -> Path:
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory('robosandbox_bringup')) / 'config' / 'train' / TRAIN_CONFIGS[inputs]


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


def plot(losses: list[tuple], curve: list[dict], path: Path, title: str) -> None:
    """The training loss and, when measured, success against training steps, in one PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, loss_axis = plt.subplots(figsize=(7, 4))
    loss_axis.semilogy([s for s, _ in losses], [v for _, v in losses], color='tab:blue')
    loss_axis.set_xlabel('training step')
    loss_axis.set_ylabel('training loss (L1 + KL)', color='tab:blue')
    if curve:
        rate_axis = loss_axis.twinx()
        x = [c['step'] for c in curve]
        y = [100 * c['success_rate'] for c in curve]
        low = [100 * (c['success_rate'] - c['ci95'][0]) for c in curve]
        high = [100 * (c['ci95'][1] - c['success_rate']) for c in curve]
        rate_axis.errorbar(x, y, yerr=[low, high], color='tab:green', marker='o', capsize=3)
        rate_axis.set_ylabel('success on unseen seeds, % (95 % CI)', color='tab:green')
        rate_axis.set_ylim(0, 100)
    loss_axis.set_title(f'closed loop: {title}')
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    print(f'plot: {path}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work', type=Path, default=Path('closed_loop'), help='where every stage writes')
    parser.add_argument('--episodes', type=int, default=60, help='expert episodes to record')
    parser.add_argument('--width', type=int, default=128)
    parser.add_argument('--height', type=int, default=96)
    parser.add_argument('--inputs', choices=sorted(TRAIN_CONFIGS), default='images',
                        help="the policy's inputs: camera images and joints, or joints and the cube's pose")
    parser.add_argument('--steps', type=int, help="training steps (default: the training config's)")
    parser.add_argument('--batch-size', type=int, help="(default: the training config's)")
    parser.add_argument('--device', default='cpu', help='training and inference device (cuda on a GPU machine)')
    parser.add_argument('--eval-episodes', type=int, default=50)
    parser.add_argument('--curve', action='store_true',
                        help='also evaluate every checkpoint training kept: success against training steps')
    parser.add_argument('--select', type=int, default=0, metavar='N',
                        help='evaluate the kept checkpoint that does best on N validation seeds '
                             '(from 200000), not the last one')
    parser.add_argument('--max-duration', type=float, default=0.0, help='evaluation episode limit, s (0: the task\'s)')
    parser.add_argument('--toy', action='store_true',
                        help=f'the chain at toy scale ({TOY}): checks each stage hands the next what it needs')
    args = parser.parse_args()
    if args.toy:
        for key, value in TOY.items():
            setattr(args, key, value)

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    # The recording serves both kinds of input; what is made from it is per kind.
    runs = work / 'runs'
    suffix = '' if args.inputs == 'images' else f'_{args.inputs}'
    dataset, train_dir, evaluation = (work / f'{name}{suffix}' for name in ('dataset', 'train', 'eval'))
    repo_id = REPO_IDS[args.inputs]
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
        'export-lerobot', str(runs), str(dataset), '--repo-id', repo_id, '--no-progress',
        *EXPORT_OPTIONS[args.inputs]), None))
    train_log = work / f'train{suffix}.log'
    config = train_config(args.inputs)
    steps = args.steps or yaml.safe_load(config.read_text())['steps']
    log_freq = max(1, min(100, steps))
    train = [str(Path(sys.executable).parent / 'lerobot-train'), f'--config_path={config}',
             f'--dataset.repo_id={repo_id}', f'--dataset.root={dataset}', f'--output_dir={train_dir}',
             f'--steps={steps}', f'--policy.device={args.device}', f'--save_freq={max(1, steps // 4)}',
             f'--log_freq={log_freq}']
    if args.batch_size:
        train.append(f'--batch_size={args.batch_size}')
    stage('train', checkpoint_of(train_dir).is_dir(), (train, train_log))
    def evaluate(checkpoint: Path, out: Path, name: str, episodes: int = args.eval_episodes,
                 seed: int = TEST_SEED) -> dict:
        command = ['eval', '--policy', str(checkpoint), '--episodes', str(episodes),
                   '--seed', str(seed), '--out', str(out), f'device:={args.device}', 'torch_threads:=2',
                   f'camera_width:={args.width}', f'camera_height:={args.height}']
        if args.max_duration:
            command.append(f'max_duration:={args.max_duration}')
        stage(name, (out / 'summary.json').is_file(), (robosandbox(*command), None))
        return json.loads((out / 'summary.json').read_text())

    kept = {int(p.name): p / 'pretrained_model'
            for p in (train_dir / 'checkpoints').iterdir() if p.name.isdigit()}

    def evaluate_step(step: int) -> dict:
        """The checkpoint of ``step`` on the test seeds (the last one's directory is eval[_state])."""
        if step == max(kept):
            return evaluate(checkpoint_of(train_dir), evaluation, 'evaluate')
        return evaluate(kept[step], work / f'eval{suffix}_{step}', f'evaluate step {step}')

    # Which checkpoint: the last, or the best on validation seeds (ties: the later).
    validation = {}
    if args.select:
        for step in sorted(kept):
            validation[step] = evaluate(kept[step], work / f'validate{suffix}_{step}',
                                        f'validate step {step}', args.select, VALIDATION_SEED)['success_rate']
        print('validation success by step: ' + ', '.join(
            f'{step}: {100 * rate:.0f} %' for step, rate in validation.items()), flush=True)
    chosen = max(validation, key=lambda step: (validation[step], step)) if validation else max(kept)
    summary = evaluate_step(chosen)
    # Success against training steps: every checkpoint lerobot-train kept, on the same seeds.
    curve = []
    if args.curve:
        for step in sorted(kept):
            at = evaluate_step(step)
            curve.append({'step': step, 'success_rate': at['success_rate'], 'ci95': at['ci95']})

    # LeRobot logs the step rounded (1K, 2K...): count the log lines instead.
    losses = [((i + 1) * log_freq, float(loss)) for i, (_, loss) in enumerate(LOSS.findall(train_log.read_text()))] \
        if train_log.is_file() else []
    result = {'inputs': args.inputs, 'stage_seconds': times, 'episodes_recorded': args.episodes,
              'training_steps': steps, 'evaluated_step': chosen,
              'validation_success_by_step': validation,
              'loss': losses, 'evaluation': {k: summary[k] for k in (
                  'episodes', 'successes', 'success_rate', 'ci95', 'median_time_to_success')},
              'success_by_step': curve}
    (work / f'closed_loop{suffix}.json').write_text(json.dumps(result, indent=2) + '\n')
    if losses:
        plot(losses, curve, work / f'closed_loop{suffix}.png', f'{args.inputs}, {args.episodes} demonstrations')
    low, high = summary['ci95']
    print(f"\nclosed loop ({args.inputs}): {args.episodes} expert episodes, {steps} training steps"
          + (f", final loss {losses[-1][1]:.3f}" if losses else '')
          + (f"; checkpoint of step {chosen} (best on {args.select} validation seeds)" if validation else '')
          + f"; {summary['successes']}/{summary['episodes']} evaluation episodes succeeded "
          f"({100 * summary['success_rate']:.0f} %, 95 % CI {100 * low:.0f}-{100 * high:.0f} %)")
    print('stage wall times: ' + ', '.join(f'{k} {v:.0f} s' for k, v in times.items()))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
