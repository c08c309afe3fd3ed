"""``robosandbox view``: the live graph, an episode bag or a dataset episode, in a browser.

  robosandbox view                         the live graph (the ``viewer`` node)
  robosandbox view runs/<episode>          an episode bag
  robosandbox view <dataset>[#N]           episode N (default 0) of a LeRobot dataset
  ... --web-port P --grpc-port G           where Rerun's web viewer is served (localhost)
  ... --save FILE.rrd [--no-serve]         write a .rrd file (for ``rerun FILE.rrd``) instead or as well

It prints the URL to open, then serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import signal
import sys
import threading

DEFAULT_WEB_PORT = 9090
DEFAULT_GRPC_PORT = 9876


def _view_live(args) -> int:
    from robosandbox_cli.processes import resolve_executable, run_group
    argv = resolve_executable('robosandbox_viewer', 'viewer') + [
        '--ros-args', '-p', f'web_port:={0 if args.no_serve else args.web_port}',
        '-p', f'grpc_port:={args.grpc_port}', '-p', f'use_sim_time:={str(args.sim_time).lower()}']
    if args.save:
        argv += ['-p', f'save:={args.save.resolve()}']
    return run_group([('viewer', argv)])


def _view_recording(args) -> int:
    from robosandbox_viewer.playback import is_dataset, log_bag, log_dataset_episode, PlaybackError
    from robosandbox_viewer.scene import open_view, Scene, SceneError
    path_text, _, episode_text = args.source.partition('#')
    path = Path(path_text).expanduser()
    try:
        episode = int(episode_text) if episode_text else args.episode
    except ValueError:
        print(f'robosandbox view: {args.source}: the episode after # must be an index', file=sys.stderr)
        return 2
    if not path.is_dir():
        print(f'robosandbox view: {path}: no such episode bag or dataset directory', file=sys.stderr)
        return 2
    try:
        view = open_view('robosandbox', 0 if args.no_serve else args.web_port, args.grpc_port,
                         str(args.save.resolve()) if args.save else '')
    except OSError as e:
        print(f'robosandbox view: {e}', file=sys.stderr)
        return 1
    scene = Scene(*view.streams)
    try:
        if is_dataset(path):
            shown = log_dataset_episode(scene, path, episode, args.robot)
            what = f'{path} episode {episode}: {shown} frames'
        else:
            shown = log_bag(scene, path, args.robot)
            what = f'{path}: {shown} messages'
    except (PlaybackError, SceneError) as e:
        print(f'robosandbox view: {e}', file=sys.stderr)
        view.close()
        return 1
    finally:
        scene.close()
    view.finish_file()
    print(what, flush=True)
    if args.save:
        print(f'saved: {args.save}', flush=True)
    if view.url:
        print(f'Rerun web viewer: {view.url}  (Ctrl-C to stop)', flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
    view.close()
    return 0


def _run(args) -> int:
    if args.no_serve and not args.save:
        print('robosandbox view: --no-serve without --save FILE.rrd leaves nothing to show to', file=sys.stderr)
        return 2
    return _view_recording(args) if args.source else _view_live(args)


def add_command(subparsers) -> None:
    """Entry point of the ``robosandbox.commands`` group."""
    parser = subparsers.add_parser(
        'view', help='watch the live graph, an episode bag or a dataset episode in a browser (Rerun)',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', nargs='?', default='',
                        help='episode bag directory or LeRobot dataset directory[#episode]; none: the live graph')
    parser.add_argument('--episode', type=int, default=0, help='dataset episode index (or DIR#N)')
    parser.add_argument('--web-port', type=int, default=DEFAULT_WEB_PORT, help="port of Rerun's web viewer")
    parser.add_argument('--grpc-port', type=int, default=DEFAULT_GRPC_PORT,
                        help='port on which the web viewer reads the recording')
    parser.add_argument('--save', type=Path, metavar='FILE.rrd', help='write the recording to a .rrd file')
    parser.add_argument('--no-serve', action='store_true', help='no web viewer: only --save')
    parser.add_argument('--robot', default='so101', help='robot description of a recording (name or sidecar)')
    parser.add_argument('--sim-time', action='store_true',
                        help='live: run on the graph\'s /clock (use_sim_time), as the sim bringups do')
    parser.set_defaults(func=_run)
