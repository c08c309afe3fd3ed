"""Evaluation results on disk, their statistics and ``robosandbox eval``.

An evaluation directory holds ``episodes.jsonl`` (one JSON object per
episode, written as each ends, so an interrupted run keeps what it measured)
and ``summary.json`` (the success rate with its Wilson 95 % interval). The
episode runner writes both (``results_dir``); ``robosandbox eval`` runs the
``sim_eval`` bringup to produce them and compares two of them. ROS-free.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from datetime import datetime
import json
import math
from pathlib import Path
import platform
import statistics
import sys

from robosandbox_data.episodes.bag import software_versions

EPISODES_FILE = 'episodes.jsonl'
SUMMARY_FILE = 'summary.json'
Z95 = 1.959963984540054      # two-sided 95 % normal quantile
VERSIONED = ('robosandbox_policy', 'robosandbox_sim', 'lerobot', 'torch', 'mujoco', 'numpy')


@dataclass
class EpisodeResult:
    """One line of episodes.jsonl."""

    episode: int
    seed: int
    success: bool                # the task's success held for success_hold: the verdict
    verdict: str                 # SUCCESS | FAILURE | UNKNOWN (no task status: a person judges)
    time_to_success: float | None   # s of sim time from the first tick; None without success
    elapsed: float               # s of sim time the run lasted
    steps: int                   # control ticks that produced a target
    missed_ticks: int
    end_reason: str              # why the run ended, as the policy node said it


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion: sound at 0/n and n/n,
    where the normal approximation collapses to a point."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def fisher_exact(a: int, n1: int, b: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test: ``a`` of ``n1`` against ``b`` of ``n2``
    successes (the tables as or less likely than the observed one)."""
    total, successes = n1 + n2, a + b
    if total == 0:
        return 1.0

    def probability(k: int) -> float:
        return math.comb(successes, k) * math.comb(total - successes, n1 - k) / math.comb(total, n1)

    observed = probability(a)
    lo, hi = max(0, successes - n2), min(successes, n1)
    return min(1.0, sum(p for p in map(probability, range(lo, hi + 1)) if p <= observed * (1 + 1e-9)))


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (same seeds)."""
    n = only_first + only_second
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(0, min(only_first, only_second) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def summarize(results: list[EpisodeResult], **about) -> dict:
    """summary.json's content: ``about`` (policy, task...) and the figures."""
    n = len(results)
    successes = sum(r.success for r in results)
    low, high = wilson_interval(successes, n)
    times = [r.time_to_success for r in results if r.time_to_success is not None]
    return {
        **about,
        'episodes': n,
        'successes': successes,
        'success_rate': successes / n if n else 0.0,
        'ci95': [round(low, 4), round(high, 4)],
        'unknown': sum(r.verdict == 'UNKNOWN' for r in results),
        'median_time_to_success': statistics.median(times) if times else None,
        'missed_ticks': sum(r.missed_ticks for r in results),
        'seeds': [r.seed for r in results],
        'versions': {'python': platform.python_version(), **software_versions(VERSIONED)},
        'finished': datetime.now().isoformat(timespec='seconds'),
    }


class ResultsWriter:
    """episodes.jsonl line by line, then summary.json. Nothing is written before the
    first episode ends (or the summary of none): a run that fails at its start leaves no
    empty results directory behind."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.results: list[EpisodeResult] = []
        self._started = False

    def _start(self) -> None:
        if not self._started:           # a directory used before: its old episodes go
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / EPISODES_FILE).write_text('')
            self._started = True

    def add(self, result: EpisodeResult) -> None:
        self._start()
        self.results.append(result)
        with (self.directory / EPISODES_FILE).open('a') as f:
            f.write(json.dumps(asdict(result)) + '\n')

    def finish(self, **about) -> dict:
        self._start()
        summary = summarize(self.results, **about)
        (self.directory / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + '\n')
        return summary


class ResultsError(ValueError):
    """An evaluation directory cannot be read; the message names the file."""


def read_results(directory: str | Path) -> tuple[dict, list[dict]]:
    """summary.json and the episodes.jsonl lines of an evaluation directory."""
    directory = Path(directory)
    try:
        summary = json.loads((directory / SUMMARY_FILE).read_text())
        episodes = [json.loads(line) for line in
                    (directory / EPISODES_FILE).read_text().splitlines() if line.strip()]
    except FileNotFoundError as e:
        raise ResultsError(f'{directory} is not an evaluation directory: no {Path(e.filename).name}') from e
    except (OSError, json.JSONDecodeError) as e:
        raise ResultsError(f'{directory}: {e}') from e
    return summary, episodes


def comparison(first: str | Path, second: str | Path) -> str:
    """Two evaluations side by side and whether their difference is significant."""
    (a, a_eps), (b, b_eps) = read_results(first), read_results(second)

    def rate(s):
        low, high = s['ci95']
        return f"{s['successes']}/{s['episodes']} = {100 * s['success_rate']:.0f} % [{100 * low:.0f}, {100 * high:.0f}]"

    rows = [('', str(first), str(second)),
            ('policy', str(a.get('policy', '?')), str(b.get('policy', '?'))),
            ('task', str(a.get('task', '?')), str(b.get('task', '?'))),
            ('success (95 % CI)', rate(a), rate(b)),
            ('median time to success', *(f"{s['median_time_to_success']:.2f} s"
                                         if s.get('median_time_to_success') is not None else '-'
                                         for s in (a, b))),
            ('missed ticks', str(a.get('missed_ticks', '?')), str(b.get('missed_ticks', '?')))]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ['  '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    difference = 100 * (b['success_rate'] - a['success_rate'])
    p = fisher_exact(a['successes'], a['episodes'], b['successes'], b['episodes'])
    lines.append(f'difference: {difference:+.0f} points; Fisher exact p = {p:.3g}'
                 + (' (significant at 5 %)' if p < 0.05 else ' (not significant at 5 %)'))
    by_seed = {e['seed']: e['success'] for e in a_eps}
    shared = [(by_seed[e['seed']], e['success']) for e in b_eps if e['seed'] in by_seed]
    if shared:
        only_a = sum(x and not y for x, y in shared)
        only_b = sum(y and not x for x, y in shared)
        lines.append(f'on the {len(shared)} shared seeds: {only_a} succeeded only in the first, '
                     f'{only_b} only in the second; exact McNemar p = {mcnemar_exact(only_a, only_b):.3g}')
    return '\n'.join(lines)


# --- robosandbox eval ---------------------------------------------------------------

def cmd_eval(args: argparse.Namespace) -> int:
    if args.compare:
        try:
            print(comparison(*args.compare))
        except ResultsError as e:
            print(f'robosandbox eval: {e}', file=sys.stderr)
            return 2
        return 0
    from robosandbox_cli.main import launch_arguments, run_bringup
    out = Path(args.out or Path('evals') / datetime.now().strftime('%Y%m%d-%H%M%S'))
    arguments = {'policy': args.policy, 'task': args.task, 'episodes': str(args.episodes),
                 'seed': str(args.seed), 'results_dir': str(out.resolve()),
                 'lockstep': 'false' if args.real_time else 'true', 'video': args.video or ''}
    arguments.update(launch_arguments(args.arguments))     # a malformed one: exit 2, named
    print(f'evaluating {arguments["policy"]} on {arguments["task"]}: {arguments["episodes"]} episodes '
          f'from seed {arguments["seed"]}, {"real time" if args.real_time else "lockstep"}; results in {out}',
          flush=True)
    code = run_bringup('sim_eval', arguments)
    try:
        summary, _ = read_results(out)
    except ResultsError as e:
        print(f'robosandbox eval: the evaluation stopped before its results were written (the reason is '
              f'above); no results in {out}' if code else f'robosandbox eval: no results ({e})', file=sys.stderr)
        return code or 1
    low, high = summary['ci95']
    print(f"{summary['policy']} on {summary['task']}: {summary['successes']}/{summary['episodes']} succeeded "
          f"({100 * summary['success_rate']:.0f} %, 95 % CI {100 * low:.0f}-{100 * high:.0f} %)"
          + (f", stopped after {summary['episodes']} of {summary['requested_episodes']} episodes"
             if summary.get('stopped_early') else '') + f'; {out / SUMMARY_FILE}')
    return code


def add_command(subparsers) -> None:
    parser = subparsers.add_parser(
        'eval', help='run seeded episodes of a policy in the sim and measure its success rate',
        description='Runs the sim_eval bringup (sim, policy node, episode runner; lockstep unless '
                    '--real-time) and writes DIR/episodes.jsonl and DIR/summary.json. '
                    'Or, with --compare, prints two evaluations side by side.')
    parser.add_argument('--policy', default='expert', help='expert | replay:... | module:Class | a checkpoint')
    parser.add_argument('--task', default='pick_cube')
    parser.add_argument('--episodes', type=int, default=10)
    parser.add_argument('--seed', type=int, default=100_000,
                        help='first seed (episode i uses seed + i); the default keeps clear of '
                             "sim_record's seeds 0, 1, 2...")
    parser.add_argument('--out', help='results directory (default: evals/<date-time>)')
    parser.add_argument('--video', metavar='CAMERA', help='write DIR/videos/<episode>.mp4 from this camera')
    parser.add_argument('--real-time', action='store_true',
                        help='run in real time instead of lockstep (results then depend on the machine)')
    parser.add_argument('--compare', nargs=2, metavar=('DIR1', 'DIR2'), help='compare two evaluations')
    parser.add_argument('arguments', nargs='*', metavar='name:=value', help='sim_eval launch arguments')
    parser.set_defaults(func=cmd_eval)
