"""``robosandbox export-lerobot``: episode bags -> a LeRobot v3.0 dataset.

Every selected bag is scanned and planned first (topics, joint names, camera
sizes, the frame timeline of ``frames.py``), so bad input fails before a byte
is written. The dataset is then written by LeRobot's own ``LeRobotDataset``
writer into a temporary directory beside the target, streaming each bag
(memory does not grow with episode length), and moved into place only when
it is finalized.
"""

from __future__ import annotations

import argparse
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
import os
from pathlib import Path
import queue
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
import warnings

import cv2
import numpy as np

from robosandbox_control.environment_state import (
    environment_state, ENVIRONMENT_STATE, feature_names, object_poses)
from robosandbox_control.messages import image_array
from robosandbox_control.units import (
    joint_units, JointUnits, lerobot_feature_names, ROS, UNIT_CONVENTIONS)
from robosandbox_data.episodes.bag import decode, EpisodeBagError, find_bags, open_reader, read_info
from robosandbox_data.episodes.frames import AlignmentError, frame_times, select
from robosandbox_data.episodes.scan import (
    EpisodeScan, IMAGE, JOINT_STATE, JOINT_TRAJECTORY, scan_episode, TASK_STATUS)

STATE = 'observation.state'
ACTION = 'action'
# The policy node's record of each target, stamped with the observation it answers,
# and the teleoperator's (so101_leader), stamped with the leader read it comes from.
POLICY_ACTION = '/policy/action'
TELEOP_ACTION = '/teleop/action'
STAMPED_ACTIONS = (POLICY_ACTION, TELEOP_ACTION)
IMAGE_FEATURE = 'observation.images.{}'


class ExportError(Exception):
    """An export that cannot be done; nothing was written."""


@dataclass
class ExportOptions:
    fps: int = 30
    units: str = ROS
    robot: str = 'so101'
    task: str = ''                   # '' = each episode's own instruction
    repo_id: str = ''                # '' = local/<dataset directory name>
    include_all: bool = False        # also failed and unknown-outcome episodes
    append: bool = False
    dry_run: bool = False
    progress: bool = True
    state_topic: str = '/joint_states'
    action_topic: str = ''           # '' = /policy/action or /teleop/action if recorded, else /joint_trajectory
    cameras: tuple[str, ...] | None = ()   # image topics; () = every image topic of the bags; None = none
    # observation.environment_state (robosandbox_control.environment_state) from this
    # TaskStatus topic; '' = no such feature
    environment_state: str = ''
    image_size: tuple[int, int] | None = None   # (height, width) to resize to; None = as recorded
    max_gap: float = 0.5             # s: an exported stream pausing longer refuses its episode
    encoder_threads: int | None = None


@dataclass
class EpisodePlan:
    scan: EpisodeScan
    task: str
    joint_names: list[str]
    cameras: dict[str, str]                  # camera name -> image topic
    image_shapes: dict[str, tuple[int, int, int]]
    times: np.ndarray                        # frame instants, s
    picks: dict[str, np.ndarray] = field(default_factory=dict)  # topic -> message index per frame
    action_topic: str = POLICY_ACTION
    objects: list[str] = field(default_factory=list)   # of the environment state, in its order

    @property
    def frames(self) -> int:
        return len(self.times)

    def repeated(self, topic: str) -> int:
        """Frames that reuse the previous frame's message of ``topic`` (gaps, slow streams)."""
        return int(np.sum(np.diff(self.picks[topic]) == 0))


def camera_name(topic: str) -> str:
    """``/cameras/front/image_raw`` -> ``front``; ``/wrist_cam`` -> ``wrist_cam``."""
    parts = [p for p in topic.split('/') if p]
    if len(parts) > 1 and parts[-1] in ('image_raw', 'image', 'image_rect', 'image_color'):
        return parts[-2]
    return parts[-1]


def plan_episode(scan: EpisodeScan, options: ExportOptions) -> EpisodePlan:
    name = scan.name

    def require(topic: str, *msgtypes: str):
        t = scan.topics.get(topic)
        if t is None or t.count == 0:
            raise ExportError(f'episode {name}: no messages on {topic}')
        if t.msgtype not in msgtypes:
            raise ExportError(f'episode {name}: {topic} is {t.msgtype}, expected {" or ".join(msgtypes)}')
        return t

    state = require(options.state_topic, JOINT_STATE)
    action_topic = options.action_topic or next(
        (t for t in STAMPED_ACTIONS if t in scan.topics), '/joint_trajectory')
    action = require(action_topic, JOINT_STATE, JOINT_TRAJECTORY)
    image_topics = () if options.cameras is None else \
        options.cameras or tuple(t.topic for t in scan.of_type(IMAGE))
    cameras, shapes = {}, {}
    for topic in image_topics:
        image = require(topic, IMAGE).first
        cam = camera_name(topic)
        if cam in cameras:
            raise ExportError(f'episode {name}: {topic} and {cameras[cam]} both name camera {cam!r}')
        if image.encoding not in ('rgb8', 'bgr8'):
            raise ExportError(f'episode {name}: {topic} is {image.encoding}; rgb8 or bgr8 expected')
        cameras[cam], shapes[cam] = topic, (int(image.height), int(image.width), 3)
    joint_names = list(state.first.name)
    commanded = list(action.first.name if action.msgtype == JOINT_STATE else action.first.joint_names)
    if missing := [j for j in joint_names if j not in commanded]:
        raise ExportError(f'episode {name}: {action_topic} does not command {missing}')
    objects = []
    if options.environment_state:
        status = require(options.environment_state, TASK_STATUS)
        objects = sorted(status.first.object_names)
        if not objects:
            raise ExportError(f'episode {name}: {status.topic} names no object, so there is no '
                              'environment state to export')
    exported = (state.topic, action.topic, *cameras.values()) + (
        (options.environment_state,) if objects else ())
    streams = {t: scan.topics[t].stamps for t in exported}
    for topic in streams:
        timing = scan.topics[topic].timing
        if timing['largest_gap_s'] > options.max_gap:
            raise ExportError(
                f'episode {name}: {topic} paused {timing["largest_gap_s"]:.3f} s at '
                f'{timing["largest_gap_at"]:.3f} s, more than --max-gap {options.max_gap:g} s: its frames '
                'there would repeat one message. Re-record it, or pass --max-gap or --allow-gaps')
    try:
        times = frame_times(streams, options.fps)
        picks = {t: select(s, times, options.fps) for t, s in streams.items()}
    except AlignmentError as e:
        raise ExportError(f'episode {name}: {e}') from None
    task = options.task or scan.info.instruction or scan.info.task
    if not task:
        raise ExportError(f'episode {name}: no task text in its metadata; pass --task')
    return EpisodePlan(scan, task, joint_names, cameras, shapes, times, picks, action_topic, objects)


def check_consistent(plans: list[EpisodePlan]) -> None:
    first = plans[0]
    for plan in plans[1:]:
        where = f'episode {plan.scan.name} (vs {first.scan.name})'
        if plan.joint_names != first.joint_names:
            raise ExportError(f'{where}: joint names {plan.joint_names} != {first.joint_names}')
        if plan.image_shapes != first.image_shapes:
            raise ExportError(f'{where}: cameras {plan.image_shapes} != {first.image_shapes}')
        if plan.objects != first.objects:
            raise ExportError(f'{where}: objects {plan.objects} != {first.objects}')


def dataset_features(plan: EpisodePlan, units: JointUnits, image_size: tuple[int, int] | None = None) -> dict:
    names = plan.joint_names if units.convention == ROS else lerobot_feature_names(plan.joint_names)
    vector = {'dtype': 'float32', 'shape': (len(names),), 'names': names}
    features = {STATE: dict(vector), ACTION: dict(vector)}
    if plan.objects:
        names = feature_names(plan.objects)
        features[ENVIRONMENT_STATE] = {'dtype': 'float32', 'shape': (len(names),), 'names': names}
    for cam, shape in plan.image_shapes.items():
        features[IMAGE_FEATURE.format(cam)] = {
            'dtype': 'video', 'shape': (*image_size, 3) if image_size else shape,
            'names': ['height', 'width', 'channels']}
    return features


def _decoders(plan: EpisodePlan, units: JointUnits, options: ExportOptions) -> dict[str, Callable]:
    joints = plan.joint_names
    name = plan.scan.name

    def positions(names, values, what):
        by_name = dict(zip(names, values))
        try:
            q = np.array([by_name[j] for j in joints], dtype=np.float64)
        except KeyError as e:
            raise ExportError(f'episode {name}: a {what} lacks joint {e}') from None
        return units.to_policy(q).astype(np.float32)

    def state(data):
        msg = decode(data, JOINT_STATE)
        return positions(msg.name, msg.position, 'joint state')

    def action(data):
        if plan.scan.topics[plan.action_topic].msgtype == JOINT_STATE:   # the policy's own record
            msg = decode(data, JOINT_STATE)
            return positions(msg.name, msg.position, 'policy action')
        msg = decode(data, JOINT_TRAJECTORY)
        if not msg.points:
            raise ExportError(f'episode {name}: a commanded trajectory has no points')
        return positions(msg.joint_names, msg.points[0].positions, 'commanded trajectory')

    def image_decoder(cam):
        h, w, _ = plan.image_shapes[cam]

        def image(data):
            msg = decode(data, IMAGE)
            if (msg.height, msg.width) != (h, w) or msg.encoding not in ('rgb8', 'bgr8'):
                raise ExportError(f'episode {name}: {plan.cameras[cam]} changed to '
                                  f'{msg.width}x{msg.height} {msg.encoding} mid-episode')
            img = image_array(msg)
            if options.image_size and options.image_size != (h, w):
                # Area averaging: what the policy node does with a checkpoint's smaller input.
                img = cv2.resize(np.ascontiguousarray(img), options.image_size[::-1], interpolation=cv2.INTER_AREA)
            return img
        return image

    def status(data):
        poses = object_poses(decode(data, TASK_STATUS))
        if sorted(poses) != plan.objects:
            raise ExportError(f'episode {name}: the task status changed its objects to {sorted(poses)} '
                              f'from {plan.objects} mid-episode')
        return environment_state(poses)

    decoders = {options.state_topic: state, plan.action_topic: action}
    decoders.update({topic: image_decoder(cam) for cam, topic in plan.cameras.items()})
    if plan.objects:
        decoders[options.environment_state] = status
    return decoders


def _features_by_topic(plan: EpisodePlan, options: ExportOptions) -> dict[str, str]:
    feature = {options.state_topic: STATE, plan.action_topic: ACTION}
    feature.update({topic: IMAGE_FEATURE.format(cam) for cam, topic in plan.cameras.items()})
    if plan.objects:
        feature[options.environment_state] = ENVIRONMENT_STATE
    return feature


def read_frames(plan: EpisodePlan, units: JointUnits, options: ExportOptions) -> Iterator[dict]:
    """The episode's frames, in order, decoding only the messages they use.

    One pass over the bag in log-time order; a message is kept only until the
    last frame that uses it is out, so memory is bounded by how far the
    streams lag each other, not by the episode's length.
    """
    decoders = _decoders(plan, units, options)
    feature = _features_by_topic(plan, options)
    picks = plan.picks
    if all(plan.scan.topics[t].offsets is not None for t in picks):
        yield from _read_frames_indexed(plan, decoders, feature)
        return
    wanted = {t: set(p.tolist()) for t, p in picks.items()}
    # keep_from[t][k]: the smallest message index frame k or a later one uses.
    keep_from = {t: np.minimum.accumulate(p[::-1])[::-1] for t, p in picks.items()}
    seen = dict.fromkeys(picks, 0)
    held: dict[str, dict[int, object]] = {t: {} for t in picks}
    n, k = plan.frames, 0
    with closing(open_reader(plan.scan.bag)) as reader:
        connections = [c for c in reader.connections if c.topic in picks]
        with _corrupt_bag_errors(plan):
            for conn, _, data in reader.messages(connections=connections):
                t = conn.topic
                i = seen[t]
                seen[t] += 1
                if i in wanted[t]:
                    held[t][i] = decoders[t](data)
                while k < n and all(seen[s] > picks[s][k] for s in picks):
                    frame = {feature[s]: held[s][picks[s][k]] for s in picks}
                    frame['task'] = plan.task
                    yield frame
                    k += 1
                    if k < n:
                        for s in picks:
                            floor = keep_from[s][k]
                            for j in [j for j in held[s] if j < floor]:
                                del held[s][j]
                if k == n:
                    return
    raise ExportError(f'episode {plan.scan.name}: the bag ended after {k} of {n} frames')


def prefetched(frames: Iterator[dict], depth: int = 8) -> Iterator[dict]:
    """``frames``, produced by a reader thread up to ``depth`` ahead.

    Reading and decoding the bag then overlaps LeRobot's per-frame work
    (statistics, handing frames to the encoder), which releases the GIL for
    most of its time. Errors of the reader are raised here, in order.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce():
        try:
            for frame in frames:
                while not stop.is_set():
                    with suppress(queue.Full):
                        ready.put((frame, None), timeout=0.1)
                        break
                if stop.is_set():
                    return
            item = (end, None)
        except BaseException as e:        # handed to the consumer, raised there
            item = (end, e)
        while not stop.is_set():
            with suppress(queue.Full):
                ready.put(item, timeout=0.1)
                return

    reader = threading.Thread(target=produce, name='bag-reader', daemon=True)
    reader.start()
    try:
        while True:
            frame, error = ready.get()
            if error is not None:
                raise error
            if frame is end:
                return
            yield frame
    finally:
        stop.set()
        reader.join()
        with suppress(Exception):
            frames.close()


def _read_frames_indexed(plan: EpisodePlan, decoders: dict, feature: dict) -> Iterator[dict]:
    """``read_frames`` for a bag scanned through its MCAP index: each picked
    message is read where the scan found it, and nothing else (another camera's
    images, unused states) is read at all."""
    last: dict[str, tuple[int, object]] = {t: (-1, None) for t in plan.picks}
    mcap = plan.scan.bag / f'{plan.scan.bag.name}.mcap'
    with _corrupt_bag_errors(plan), open(mcap, 'rb') as f:
        for k in range(plan.frames):
            frame = {}
            for t, p in plan.picks.items():
                i = int(p[k])
                if last[t][0] != i:
                    topic = plan.scan.topics[t]
                    data = os.pread(f.fileno(), int(topic.sizes[i]), int(topic.offsets[i]))
                    if len(data) != topic.sizes[i]:
                        raise EOFError(f'{t} message {i} is cut short')
                    last[t] = (i, decoders[t](data))
                frame[feature[t]] = last[t][1]
            frame['task'] = plan.task
            yield frame


@contextmanager
def _corrupt_bag_errors(plan: EpisodePlan):
    """Whatever a damaged bag makes the readers raise becomes one ExportError
    naming the episode (rosbags, mcap and the CDR decoders raise a variety)."""
    try:
        yield
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f'episode {plan.scan.name}: corrupt bag ({type(e).__name__}: {e})') \
            from None


@dataclass
class ExportReport:
    dataset: Path
    episodes: list[EpisodePlan]
    skipped: list[tuple[Path, str]]
    frames: int
    seconds: float = 0.0        # from the first bag read to the finalized dataset


def _select(bags: list[Path], include_all: bool) -> tuple[list[Path], list[tuple[Path, str]]]:
    chosen, skipped = [], []
    for bag in bags:
        info = read_info(bag)
        if not info.complete:
            skipped.append((bag, f'incomplete: {info.end_reason}'))
        elif not include_all and not info.succeeded:
            skipped.append((bag, f'not successful (success: {info.success}); --all exports it'))
        else:
            chosen.append(bag)
    return chosen, skipped


def plan_export(paths, options: ExportOptions) -> tuple[list[EpisodePlan], list[tuple[Path, str]]]:
    try:
        bags, skipped = _select(find_bags(paths), options.include_all)
    except EpisodeBagError as e:
        raise ExportError(str(e)) from None
    if not bags:
        raise ExportError('no episode to export' + ''.join(
            f'\n  skipped {b.name}: {why}' for b, why in skipped))
    plans = []
    for bag in bags:
        try:
            plans.append(plan_episode(scan_episode(bag), options))
        except EpisodeBagError as e:
            raise ExportError(f'episode {bag.name}: {e}') from None
    check_consistent(plans)
    return plans, skipped


def _units(options: ExportOptions, joint_names) -> JointUnits:
    if options.units not in UNIT_CONVENTIONS:
        raise ExportError(f'unknown units {options.units!r}; use one of {UNIT_CONVENTIONS}')
    if options.units == ROS:
        return joint_units(ROS, joint_names, '', (0.0, 1.0))
    from robosandbox_description.robot import load_robot, RobotDescriptionError
    try:
        robot = load_robot(options.robot)
    except RobotDescriptionError as e:
        raise ExportError(f'--robot: {e}') from None
    return joint_units(options.units, joint_names, robot.gripper_joint, robot.gripper_range)


def export(paths, dataset_dir: Path, options: ExportOptions = ExportOptions(),
           log: Callable[[str], None] = print) -> ExportReport:
    """Export the episode bags under ``paths`` into ``dataset_dir``."""
    dataset_dir = Path(dataset_dir).resolve()
    if dataset_dir.exists() and not options.append:
        raise ExportError(f'{dataset_dir} exists; pass --append to add episodes to it')
    if options.append and not (dataset_dir / 'meta' / 'info.json').exists():
        raise ExportError(f'--append: {dataset_dir} is not a LeRobot dataset')
    start = time.perf_counter()
    plans, skipped = plan_export(paths, options)
    units = _units(options, plans[0].joint_names)
    features = dataset_features(plans[0], units, options.image_size)
    report = ExportReport(dataset_dir, plans, skipped, sum(p.frames for p in plans))
    if options.dry_run:
        return report
    repo_id = options.repo_id or f'local/{dataset_dir.name}'
    dataset_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f'.{dataset_dir.name}.', dir=dataset_dir.parent))
    try:
        dataset = _open_dataset(work / 'dataset', dataset_dir, repo_id, features, plans, options)
        from tqdm import tqdm
        bar = tqdm(total=report.frames, unit='frame', disable=not options.progress,
                   file=sys.stderr)
        pace = EncoderPace(dataset)
        try:
            for plan in plans:
                bar.set_description(plan.scan.name[-40:])
                for frame in prefetched(read_frames(plan, units, options)):
                    pace.wait_for_room()
                    dataset.add_frame(frame)
                    bar.update()
                pace.check_nothing_dropped(plan.scan.name)
                dataset.save_episode()
        except BaseException:
            # Stop LeRobot's encoder threads; the half-written copy is deleted below.
            with suppress(Exception):
                dataset.clear_episode_buffer()
                dataset.finalize()
            raise
        finally:
            bar.close()
        dataset.finalize()
        report.seconds = time.perf_counter() - start
        _replace(work / 'dataset', dataset_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


class EncoderPace:
    """Frames for LeRobot's streaming video encoder only as fast as it takes them.

    Its ``feed_frame`` gives a full camera queue 0.1 s, then drops the frame
    with a warning: right for a live camera, which cannot wait, wrong for an
    export, which can (a loaded machine stalls the encoder that long). So each
    frame waits for room in every camera's queue first, and an episode that
    lost a frame anyway fails the export. The queues are LeRobot's internals
    (pinned version): where they are absent, a warning says nothing is paced.
    """

    def __init__(self, dataset):
        self._encoder = getattr(dataset.writer, '_streaming_encoder', None)
        if self._encoder is not None and not hasattr(self._encoder, '_frame_queues'):
            warnings.warn('this LeRobot version hides its encoder queues: the export cannot '
                          'wait for the encoder, and a stalled encoder may drop frames',
                          RuntimeWarning, stacklevel=2)

    def wait_for_room(self) -> None:
        for frames in getattr(self._encoder, '_frame_queues', {}).values():
            while frames.full():
                time.sleep(0.002)

    def check_nothing_dropped(self, episode: str) -> None:
        dropped = sum(getattr(self._encoder, '_dropped_frames', {}).values())
        if dropped:
            raise ExportError(f'episode {episode}: LeRobot\'s video encoder dropped {dropped} frames')


def _open_dataset(root: Path, existing: Path, repo_id: str, features: dict,
                  plans: list[EpisodePlan], options: ExportOptions):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    common = dict(streaming_encoding=True, encoder_threads=options.encoder_threads)
    if options.append:
        shutil.copytree(existing, root)
        dataset = LeRobotDataset.resume(repo_id, root=root, **common)
        have = {k: v for k, v in dataset.meta.features.items() if k in features}
        for key, spec in features.items():
            old = have.get(key)
            if old is None or tuple(old['shape']) != tuple(spec['shape']) \
                    or list(old.get('names') or []) != list(spec['names'] or []):
                raise ExportError(f'--append: feature {key} {spec["shape"]} {spec["names"]} does not '
                                  f'match the dataset ({old and (old["shape"], old.get("names"))})')
        if dataset.meta.fps != options.fps:
            raise ExportError(f'--append: the dataset is {dataset.meta.fps} fps, not {options.fps}')
        return dataset
    robot_type = plans[0].scan.info.robot_type or None
    return LeRobotDataset.create(repo_id, options.fps, features, root=root, robot_type=robot_type,
                                 use_videos=True, **common)


def _replace(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an existing ``target`` is replaced only once ``new`` is there."""
    if not target.exists():
        new.rename(target)
        return
    old = target.with_name(f'.{target.name}.old')
    target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _print_plan(report: ExportReport, dry_run: bool) -> None:
    for bag, why in report.skipped:
        print(f'skipped {bag.name}: {why}')
    for plan in report.episodes:
        repeats = ', '.join(f'{cam} {plan.repeated(topic)}' for cam, topic in plan.cameras.items())
        print(f'{"would write" if dry_run else "wrote"} {plan.scan.name}: {plan.frames} frames '
              f'({plan.times[-1] - plan.times[0]:.2f} s), '
              f'success {plan.scan.info.success}, task {plan.task!r}'
              + (f'; repeated images: {repeats}' if repeats else ''))


def _run(args) -> int:
    import logging
    import os
    os.environ.setdefault('SVT_LOG', '1')       # SVT-AV1 prints its banner per video otherwise
    logging.getLogger('lerobot.utils.import_utils').setLevel(logging.ERROR)
    if args.no_cameras and args.camera:
        print('robosandbox export-lerobot: --camera and --no-cameras contradict each other', file=sys.stderr)
        return 2
    import lerobot.datasets.lerobot_dataset  # noqa: F401  (seconds of import, kept out of the timing)
    options = ExportOptions(
        fps=args.fps, units=args.units, robot=args.robot, task=args.task or '',
        repo_id=args.repo_id or '', include_all=args.all, append=args.append,
        dry_run=args.dry_run, progress=not args.no_progress,
        state_topic=args.state_topic, action_topic=args.action_topic,
        cameras=None if args.no_cameras else tuple(args.camera or ()), image_size=args.image_size,
        environment_state=args.environment_state or '',
        max_gap=float('inf') if args.allow_gaps else args.max_gap)
    try:
        report = export(args.inputs, args.dataset_dir, options)
    except (ExportError, EpisodeBagError) as e:
        print(f'robosandbox export-lerobot: {e}\nnothing was written.', file=sys.stderr)
        return 1
    _print_plan(report, options.dry_run)
    if options.dry_run:
        print(f'dry run: {len(report.episodes)} episodes, {report.frames} frames '
              f'would go to {report.dataset}')
    else:
        print(f'{report.dataset}: {len(report.episodes)} episodes, {report.frames} frames in '
              f'{report.seconds:.1f} s ({report.frames / max(report.seconds, 1e-9):.0f} frames/s)')
    return 0


def add_command(subparsers) -> None:
    """Entry point of the ``robosandbox.commands`` group."""
    parser = subparsers.add_parser(
        'export-lerobot', help='write episode bags as a LeRobot v3.0 dataset',
        description='Export recorded episode bags (or runs directories of them) to a '
                    'LeRobot v3.0 dataset. Only successful episodes unless --all.')
    parser.add_argument('inputs', nargs='+', type=Path, metavar='BAG_OR_RUNS_DIR')
    parser.add_argument('dataset_dir', type=Path, help='dataset root to create (or --append to)')
    parser.add_argument('--repo-id', help='dataset repo id (default: local/<dataset_dir name>)')
    parser.add_argument('--fps', type=_positive(int), default=30, help='frame rate of the dataset (default 30)')
    parser.add_argument('--task', help="task text of every episode (default: each episode's instruction)")
    parser.add_argument('--units', choices=UNIT_CONVENTIONS, default=ROS,
                        help='ros: radians, joint names; lerobot_so101: degrees and 0-100 gripper, '
                             '<joint>.pos names, like datasets recorded by LeRobot on an SO-101')
    parser.add_argument('--robot', default='so101', help='robot description for lerobot_so101 units')
    parser.add_argument('--all', action='store_true',
                        help='also export failed episodes and those of unknown outcome')
    parser.add_argument('--append', action='store_true', help='add the episodes to an existing dataset')
    parser.add_argument('--dry-run', action='store_true', help='check and print what would be written')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--state-topic', default='/joint_states')
    parser.add_argument('--action-topic', default='',
                        help='commanded targets: a JointState stamped with the observation it answers '
                             'or a JointTrajectory (default: /policy/action or /teleop/action if '
                             'recorded, else /joint_trajectory)')
    parser.add_argument('--camera', action='append', metavar='IMAGE_TOPIC',
                        help='export only these image topics (repeatable; default: all)')
    parser.add_argument('--no-cameras', action='store_true',
                        help='export no image (a state-based dataset: with --environment-state)')
    parser.add_argument('--environment-state', nargs='?', const='/task_status', metavar='STATUS_TOPIC',
                        help='also export observation.environment_state: the poses of the objects of '
                             'the recorded task status (default topic /task_status), for state-based '
                             'policies; the policy node feeds the same from the live task status')
    parser.add_argument('--max-gap', type=_positive(float), default=ExportOptions.max_gap, metavar='SECONDS',
                        help='refuse an episode where an exported stream (state, targets, a camera) '
                             'pauses longer than this (default %(default)s s)')
    parser.add_argument('--allow-gaps', action='store_true', help='export episodes whatever their gaps')
    parser.add_argument('--image-size', type=_image_size, metavar='HEIGHTxWIDTH',
                        help='resize every camera to this size (e.g. 96x128: train small without re-recording)')
    parser.set_defaults(func=_run)


def _positive(kind: type):
    """An argparse type: a ``kind`` above zero (a zero fps divided by zero, deep in the export)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or value == float('inf'):
            raise argparse.ArgumentTypeError(f'{text!r} is not a positive {"whole " if kind is int else ""}number')
        return value
    return parse


def _image_size(text: str) -> tuple[int, int]:
    height, sep, width = text.lower().partition('x')
    if not sep or not height.isdigit() or not width.isdigit() or int(height) < 1 or int(width) < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not HEIGHTxWIDTH, e.g. 96x128')
    return int(height), int(width)
