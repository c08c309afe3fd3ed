"""The hardware bringups run as documented: recording an SO-101 episode on the
emulated bus and exporting it works exactly as in sim."""

import subprocess
import sys

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
                           ('hw_emulated', ['so101_emulator', 'so101'])):
        out = subprocess.run(ROBOSANDBOX + ['launch', bringup, '--print'], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert [line.split('__node:=')[1].split()[0] for line in out.stdout.splitlines()
                if '__node:=' in line] == nodes, out.stdout
