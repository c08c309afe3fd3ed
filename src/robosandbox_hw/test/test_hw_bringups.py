"""The hardware bringups run as documented: recording an SO-101 episode on the
emulated bus and exporting it works exactly as in sim."""

import json
import os
import signal
import subprocess
import sys
import time

from lerobot.datasets.lerobot_dataset import LeRobotDataset
import pytest

pytestmark = pytest.mark.nodes     # starts ROS node processes: not in `make test-fast`

ROBOSANDBOX = [sys.executable, '-m', 'robosandbox_cli.main']


def test_hw_record_then_export_on_the_emulated_arm(emulator, calibration_file, camera_video, tmp_path):
    runs, dataset = tmp_path / 'runs', tmp_path / 'dataset'
    launch = subprocess.run(ROBOSANDBOX + [
        'launch', 'hw_record', f'port:={emulator.port}', f'calibration_file:={calibration_file}',
        'camera_names:=[front]', f'camera_devices:=[{camera_video}]', 'camera_width:=320',
        'camera_height:=240', 'policy:=hold', 'episodes:=1', 'max_duration:=3.0', 'reset_pause:=0.0',
        f'runs_dir:={runs}'], capture_output=True, text=True, timeout=180)
    assert launch.returncode == 0, launch.stdout + launch.stderr
    assert ': complete,' in launch.stdout and '0 dropped' in launch.stdout, launch.stdout
    assert not any(emulator.torque().values())        # the bringup's end released the arm
    export = subprocess.run(ROBOSANDBOX + ['export-lerobot', str(runs), str(dataset), '--all',
                                           '--units', 'lerobot_so101', '--no-progress'],
                            capture_output=True, text=True, timeout=180)
    assert export.returncode == 0, export.stdout + export.stderr
    ds = LeRobotDataset('local/dataset', root=dataset)
    assert ds.meta.total_episodes == 1 and ds.meta.total_frames > 60
    assert 'observation.images.front' in ds.meta.features
    frame = ds[0]
    assert tuple(frame['observation.images.front'].shape) == (3, 240, 320)


def test_hw_bringups_describe_the_sim_graphs_with_the_arm(tmp_path):
    for bringup, nodes in (('hw', ['so101']), ('hw_policy', ['so101', 'policy', 'episode_runner']),
                           ('hw_record', ['so101', 'policy', 'recorder', 'episode_runner']),
                           ('hw_eval', ['so101', 'policy', 'episode_runner']),
                           ('hw_emulated', ['so101_emulator', 'so101'])):
        out = subprocess.run(ROBOSANDBOX + ['launch', bringup, '--print'], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert [line.split('__node:=')[1].split()[0] for line in out.stdout.splitlines()
                if '__node:=' in line] == nodes, out.stdout


def test_hw_eval_takes_each_verdict_from_the_operator(emulator, calibration_file, camera_video, tmp_path):
    """A real arm has no task status: after each run the operator answers y / n in the
    terminal (a pty here), and the answers are the results robosandbox eval would write."""
    results, log = tmp_path / 'eval', tmp_path / 'launch.log'
    operator, terminal = os.openpty()
    with log.open('w') as out:
        launch = subprocess.Popen(ROBOSANDBOX + [
            'launch', 'hw_eval', f'port:={emulator.port}', f'calibration_file:={calibration_file}',
            f'camera_devices:=[{camera_video}]', 'camera_width:=320', 'camera_height:=240', 'policy:=hold',
            'episodes:=2', 'max_duration:=1.0', 'reset_pause:=0.0', f'results_dir:={results}',
            f'keys:={os.ttyname(terminal)}'], stdout=out, stderr=subprocess.STDOUT, text=True)

    def answer(nth: int, key: str) -> None:
        deadline = time.monotonic() + 120.0
        while log.read_text().count('did it succeed? y / n') < nth:
            assert launch.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        os.write(operator, key.encode())

    try:
        answer(1, 'x')          # not an answer: asked again
        answer(2, 'y')
        answer(3, 'n')
        assert launch.wait(120) == 0, log.read_text()
    finally:
        if launch.poll() is None:
            launch.send_signal(signal.SIGINT)
            launch.wait(60)
        os.close(operator)
        os.close(terminal)
    summary = json.loads((results / 'summary.json').read_text())
    assert (summary['judge'], summary['episodes'], summary['successes']) == ('operator', 2, 1)
    episodes = [json.loads(line) for line in (results / 'episodes.jsonl').read_text().splitlines()]
    assert [e['verdict'] for e in episodes] == ['SUCCESS', 'FAILURE']
    assert 'summary: 1/2 episodes succeeded' in log.read_text()
    assert not any(emulator.torque().values())


def test_hw_eval_without_a_terminal_fails_before_anything_moves(tmp_path):
    process = subprocess.run(ROBOSANDBOX + [
        'run', 'robosandbox_policy', 'episode_runner', '--ros-args', '-p', 'judge:=operator',
        '-p', f'keys:={tmp_path / "no_tty"}', '-p', 'reset:=home'], capture_output=True, text=True, timeout=120)
    assert process.returncode == 1
    assert 'no terminal to read keys from' in process.stdout + process.stderr
