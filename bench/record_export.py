#!/usr/bin/env python3
"""Recorder and export speed.

  record   a publisher process (front + wrist images 480x640 rgb8 at 30 Hz
           with camera_info, joint_states 100 Hz, joint_trajectory 30 Hz, the
           sim's QoS) and the recorder node in its own process; two episodes of
           --short and --duration s. Figures: messages recorded, dropped
           (publisher sequence gaps and queue), write throughput, recorder CPU.
           ``--source sim`` records the MuJoCo sim rendering both cameras
           instead (its rendering then competes with the recorder for the CPU).
  export   ``robosandbox export-lerobot`` of each recorded episode with one
           camera (front, 480x640), in its own process: frames/s and peak
           memory (short vs long episode). Side by side in this run, two
           baselines get the very same frames from memory, so only the reading
           differs: LeRobot's writer as ``LeRobotDataset.create`` comes (each
           frame a PNG, the video encoded at save_episode), and LeRobot's
           writer with streaming encoding, the mode our export uses (its
           ceiling). --repeat alternating rounds, medians reported.

Usage:  python bench/record_export.py [--duration 60] [--short 20] [--repeat 3] [--bag BAG ...]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_DOMAIN_ID', str(200 + os.getpid() % 30))
os.environ.setdefault('SVT_LOG', '1')

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import rclpy  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from robosandbox_cli.processes import NodeProcess  # noqa: E402
from robosandbox_control.arm_interface import to_seconds  # noqa: E402
from robosandbox_control.spinning import spin_for, spin_until, wait_future  # noqa: E402
from robosandbox_msgs.srv import StartEpisode, StopEpisode  # noqa: E402
from robosandbox_data.episodes.bag import read_info  # noqa: E402
from robosandbox_data.episodes.scan import scan_episode  # noqa: E402

CAMERA = (480, 640)
HOME = np.array([0.0, -1.2, 1.1, 1.1, 0.0, 0.6])


SYNTHETIC_SOURCE = """
import time, numpy as np, rclpy
from sensor_msgs.msg import CameraInfo, Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from robosandbox_control.qos import CAMERA_INFO_QOS, IMAGE_QOS
rclpy.init()
node = rclpy.create_node('synthetic_robot')
h, w = %d, %d
cams = [(node.create_publisher(Image, f'cameras/{c}/image_raw', IMAGE_QOS),
         node.create_publisher(CameraInfo, f'cameras/{c}/camera_info', CAMERA_INFO_QOS)) for c in ('front', 'wrist')]
js = node.create_publisher(JointState, 'joint_states', 100)
cmd = node.create_publisher(JointTrajectory, 'joint_trajectory', 10)
names = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']
base = np.linspace(0, 255, w, dtype=np.float32)[None, :, None].repeat(h, 0).repeat(3, 2)
frames = [((base + 8 * i) %% 256).astype(np.uint8).tobytes() for i in range(32)]
images = [Image(height=h, width=w, encoding='rgb8', step=w * 3, data=f) for f in frames]
t0, k = time.monotonic(), 0
try:
    while rclpy.ok():
        t = k / 300.0                      # 300 Hz base tick: joint states every 3rd, images every 10th
        time.sleep(max(0.0, t0 + t - time.monotonic()))
        stamp = rclpy.time.Time(nanoseconds=int(t * 1e9)).to_msg()
        q = (0.3 * np.sin(0.5 * t + np.arange(6))).tolist()
        if k %% 3 == 0:
            m = JointState(name=names, position=q); m.header.stamp = stamp; js.publish(m)
        if k %% 10 == 0:
            for pub, info_pub in cams:
                img = images[(k // 10) %% len(images)]; img.header.stamp = stamp; pub.publish(img)
                info = CameraInfo(height=h, width=w); info.header.stamp = stamp; info_pub.publish(info)
            c = JointTrajectory(joint_names=names, points=[JointTrajectoryPoint(positions=q)])
            c.header.stamp = stamp; cmd.publish(c)
        k += 1
except Exception:
    pass    # terminated: the context is gone mid-publish
"""


def record(runs: Path, durations: list[float], source: str) -> list[Path]:
    if source == 'sim':
        sim = NodeProcess('robosandbox_sim', 'sim_node', 'cameras:=[front, wrist]',
                          f'camera_height:={CAMERA[0]}', f'camera_width:={CAMERA[1]}',
                          'camera_rate:=30.0', 'joint_state_rate:=100.0')
    else:
        sim = subprocess.Popen([sys.executable, '-c', SYNTHETIC_SOURCE % CAMERA])
    rec = NodeProcess('robosandbox_data', 'recorder_node', f'runs_dir:={runs}',
                      name='recorder')
    rclpy.init()
    node = rclpy.create_node('bench_record')
    bags = []
    try:
        start = node.create_client(StartEpisode, 'recorder/start')
        stop = node.create_client(StopEpisode, 'recorder/stop')
        states = []
        node.create_subscription(JointState, 'joint_states', states.append, 10)
        # A 30 Hz stream of targets, like a teleoperator's: a slow sweep around
        # home, stamped with the newest joint state (sim time).
        commands = node.create_publisher(JointTrajectory, 'joint_trajectory', 10) \
            if source == 'sim' else None

        def command():
            if not states or commands is None:
                return
            stamp = states[-1].header.stamp
            t = to_seconds(stamp)
            msg = JointTrajectory(joint_names=list(states[-1].name))
            msg.header.stamp = stamp
            msg.points = [JointTrajectoryPoint(
                positions=(HOME + 0.3 * np.sin(0.5 * t + np.arange(6))).tolist())]
            msg.points[0].time_from_start.nanosec = 33_000_000
            commands.publish(msg)
            del states[:-1]
        node.create_timer(1 / 30, command)
        assert start.wait_for_service(timeout_sec=60) and spin_until(node, lambda: states, 60)
        spin_for(node, 3.0)            # the recorder discovers the camera topics
        proc = psutil.Process(rec.child.process.pid)
        for duration in durations:
            started = wait_future(node, start.call_async(StartEpisode.Request(
                task='bench', instruction='record', seed=len(bags))))
            assert started.success, started.message
            cpu0, t0 = sum(proc.cpu_times()[:2]), time.monotonic()
            spin_for(node, duration)
            cpu1, t1 = sum(proc.cpu_times()[:2]), time.monotonic()
            result = wait_future(node, stop.call_async(StopEpisode.Request(
                success=True, success_known=True, end_reason='bench')), timeout=120)
            bag = Path(result.bag_path)
            bags.append(bag)
            size = sum(f.stat().st_size for f in bag.iterdir())
            scan = scan_episode(bag)
            print(f'record {duration:.0f} s: complete={result.complete}, {result.messages} messages, '
                  f'{result.dropped} dropped {read_info(bag).dropped_by_topic or ""}')
            for name in ('/cameras/front/image_raw', '/cameras/wrist/image_raw', '/joint_states',
                         '/joint_trajectory', '/clock'):
                if name not in scan.topics:
                    continue
                t = scan.topics[name]
                print(f'  {name:28s} {t.count:6d} msgs, {t.rate:6.2f} Hz, '
                      f'{len(t.gaps())} gaps')
            print(f'  write throughput {size / 2**20 / (t1 - t0):.1f} MB/s '
                  f'({size / 2**20:.0f} MB), recorder CPU {100 * (cpu1 - cpu0) / (t1 - t0):.0f} % '
                  f'of one core')
    finally:
        node.destroy_node()
        rclpy.shutdown()
        rec.close()
        if source == 'sim':
            sim.close()
        else:
            sim.terminate()
            sim.wait(timeout=10)
    return bags


def measure(argv: list[str]) -> tuple[float, float, str]:
    """Wall time and peak RSS (MB) of a command, sampled every 50 ms."""
    t0 = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    out = child.stdout.read()
    if child.returncode != 0:
        raise RuntimeError(out)
    return time.perf_counter() - t0, peak / 2**20, out


EXPORT_TIMING = '''
import sys, time, re
import lerobot.datasets.lerobot_dataset   # imported before the clock starts, as in the baseline
from robosandbox_data.episodes import export as ex
t0 = time.perf_counter()
report = ex.export([sys.argv[1]], sys.argv[2], ex.ExportOptions(
    cameras=('/cameras/front/image_raw',), progress=False))
print(f'FRAMES {report.frames} SECONDS {report.seconds:.3f}')
'''

BASELINE = '''
import sys, time
import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from robosandbox_data.episodes import export as ex
bag, root, mode = sys.argv[1], sys.argv[2], sys.argv[3]
options = ex.ExportOptions(cameras=('/cameras/front/image_raw',), include_all=True)
plans, _ = ex.plan_export([bag], options)
units = ex._units(options, plans[0].joint_names)
# The very frames the export writes, in memory before the clock starts: the
# encoder gets the same pictures, so only the reading differs.
frames = [{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in f.items()}
          for f in ex.read_frames(plans[0], units, options)]
t0 = time.perf_counter()
# 'default': LeRobotDataset.create as it comes (each frame a PNG, encoded at
# save_episode); 'streaming': frames piped to the encoder, as our export does.
ds = LeRobotDataset.create('local/baseline', 30, ex.dataset_features(plans[0], units), root=root,
                           use_videos=True, streaming_encoding=(mode == 'streaming'))
for frame in frames:
    ds.add_frame(frame)
ds.save_episode()
ds.finalize()
print(f'FRAMES {len(frames)} SECONDS {time.perf_counter() - t0:.3f}')
'''


RUNS = {   # name: (what, script, extra arguments)
    'ours': ('robosandbox export-lerobot', EXPORT_TIMING, ()),
    'default': ("LeRobot's writer, default settings, frames from memory", BASELINE, ('default',)),
    'streaming': ("LeRobot's writer, streaming encoding, frames from memory", BASELINE,
                  ('streaming',)),
}


def parse(out: str) -> tuple[int, float]:
    line = [x for x in out.splitlines() if x.startswith('FRAMES')][-1].split()
    return int(line[1]), float(line[3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration', type=float, default=60.0)
    parser.add_argument('--short', type=float, default=20.0)
    parser.add_argument('--source', choices=('synthetic', 'sim'), default='synthetic')
    parser.add_argument('--repeat', type=int, default=3, help='export runs per episode (medians)')
    parser.add_argument('--bag', type=Path, action='append',
                        help='export these episode bags instead of recording (repeatable)')
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix='bench_record_'))
    try:
        bags = args.bag or record(work / 'runs', [args.short, args.duration], args.source)
        for bag in bags:
            # Ours and the two baselines alternate, --repeat times each: the medians,
            # and the medians of the per-round ratios, damp the noise of a shared box.
            rates = {name: [] for name in RUNS}
            rss = 0.0
            for k in range(args.repeat):
                for name, (_, script, extra) in RUNS.items():
                    out_dir = work / f'{name}_{bag.name}_{k}'
                    _, peak, out = measure([sys.executable, '-c', script, str(bag), str(out_dir),
                                            *extra])
                    frames, seconds = parse(out)
                    rates[name].append(frames / seconds)
                    if name == 'ours':
                        rss = max(rss, peak)
                    shutil.rmtree(out_dir, ignore_errors=True)
            ours = np.array(rates['ours'])
            print(f'export {frames} frames (front 480x640), {args.repeat} rounds: ours median '
                  f'{np.median(ours):.1f} frames/s, peak RSS {rss:.0f} MB')
            for name in ('default', 'streaming'):
                theirs = np.array(rates[name])
                ratios = ours / theirs
                print(f'  vs {RUNS[name][0]}: median {np.median(theirs):.1f} frames/s; ratio median '
                      f'{np.median(ratios):.2f} (rounds: {", ".join(f"{r:.2f}" for r in ratios)})')
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
