"""Runs N episodes: reset, run the policy, print the verdict; then exit.

A client of ``sim/reset`` (or, on hardware, ``home``) and ``policy/run`` (and, when ``recorder`` is set, of
the recorder's ``start``/``stop``: each run is one recorded episode), it is
what makes ``sim_policy``, ``sim_record`` and ``sim_eval`` jobs that end: one
line per episode, a summary line, exit status 0 once all episodes ran (whatever
their verdicts), 1 if the sim, the policy or the recorder failed. With
``results_dir`` it writes episodes.jsonl and summary.json there
(:mod:`robosandbox_policy.evaluation`), with ``video`` one mp4 per episode.

An episode succeeds when the run ended because the task's success held for
``success_hold`` (RunPolicy SUCCEEDED), never merely because success was
reported at some moment: a run the policy node stopped on a bad target fails.
On hardware there is no task status: with ``judge:=operator`` the runner asks
the operator after each run (y / n on the ``keys`` terminal, as ``hw_eval``
does), and that answer is the verdict, in the results and in the recording.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import signal
import time

import rclpy
from rclpy.action import ActionClient
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node, NodeNameNonExistentError
from std_srvs.srv import Trigger

from robosandbox_control.parameters import declare, parameter
from robosandbox_control.clients import ActionRefused, send_goal
from robosandbox_control.spinning import init, shutdown, spin_for, wait_future
from robosandbox_control.terminal import KeyReader, NoTerminal
from robosandbox_msgs.action import RunPolicy
from robosandbox_msgs.srv import ResetSim, StartEpisode, StopEpisode
from robosandbox_data.recorder_node import NOT_FLOWING
from robosandbox_policy.evaluation import EpisodeResult, ResultsWriter
from robosandbox_sim.task import load_task, TaskError

# Seconds after a backend's first camera topic within which all of its cameras appear.
CAMERAS_SETTLE = 3.0


def _one_of(*choices):
    return lambda value: '' if value in choices else f'use one of {list(choices)}'


@dataclass
class RunnerParameters:
    """Parameters of ``episode_runner``, a job that reads them once at start."""

    episodes: int = parameter(1, 'Number of episodes to run.', read_only=True, range=(0, 1_000_000))
    task: str = parameter('pick_cube', 'Sim task of each episode (name or YAML path).', read_only=True)
    seed: int = parameter(0, 'Seed of the first episode; episode i uses seed + i.', read_only=True,
                          range=(0, 2**31 - 1))
    instruction: str = parameter('', "Language instruction for the policy; '' = the task's own.", read_only=True)
    max_duration: float = parameter(0.0, "Episode length limit, s of sim time; 0 = the task's time_limit.",
                                    read_only=True, range=(0.0, 1e6))
    success_hold: float = parameter(0.5, 'An episode ends once the task has reported success this long, s.',
                                    read_only=True, range=(0.0, 1e6))
    reset: str = parameter('sim', "Between episodes: 'sim' resets the sim (reset_service), 'home' moves the "
                                  'arm home (the home service) and waits reset_pause for a person to reset '
                                  'the scene.', read_only=True, validate=_one_of('sim', 'home'))
    reset_service: str = parameter('sim/reset', 'The sim reset service.', read_only=True)
    reset_pause: float = parameter(5.0, 'With reset:=home, seconds after homing before the next episode starts.',
                                   read_only=True, range=(0.0, 3600.0))
    run_action: str = parameter('policy/run', "The policy node's run action.", read_only=True)
    recorder: str = parameter('', "Namespace of a recorder's start/stop services, e.g. 'recorder'; '' = no "
                                  'recording.', read_only=True)
    policy: str = parameter('', 'What drives the arm, written into recorded episodes.', read_only=True)
    wait_timeout: float = parameter(60.0, 'How long to wait for the backend, the recorder and the policy node '
                                          'to appear, s; a policy node that is up but still loading its '
                                          'checkpoint is waited for as long as it stays up.', read_only=True,
                                    range=(0.0, 3600.0))
    results_dir: str = parameter('', "Directory for episodes.jsonl and summary.json; '' = none.", read_only=True)
    video: str = parameter('', "Camera whose images become <results_dir>/videos/<episode>.mp4; '' = none.",
                           read_only=True)
    judge: str = parameter('task', "Who gives each episode's verdict: 'task' (its task status; none on hardware: "
                                   "UNKNOWN) or 'operator' (asked after each run: y / n on the keys terminal).",
                           read_only=True, validate=_one_of('task', 'operator'))
    keys: str = parameter('/dev/tty', "With judge:=operator, the terminal the operator's answers are read from.",
                          read_only=True)
    viewer: bool = parameter(False, "true: a viewer node ('viewer', in this namespace) runs beside; the first "
                                    'episode waits until it watches (up to wait_timeout, then goes on without '
                                    'it), so the viewer shows every episode whole.', read_only=True)


def verdict(result: RunPolicy.Result) -> str:
    """SUCCESS only when success held to the end (SUCCEEDED); UNKNOWN when no task
    status came (hardware: a person judges); else FAILURE."""
    if result.end_reason == RunPolicy.Result.SUCCEEDED:
        return 'SUCCESS'
    if not result.success_known and result.end_reason != RunPolicy.Result.POLICY_ERROR:
        return 'UNKNOWN'
    return 'FAILURE'


def progress_bar(done: int, total: int, width: int = 20) -> str:
    filled = round(width * done / total) if total else width
    return '[' + '#' * filled + '.' * (width - filled) + ']'


class EpisodeRunner(Node):

    def __init__(self, **kwargs):
        super().__init__('episode_runner', **kwargs)
        self.p = declare(self, RunnerParameters)
        self.task = load_task(self.p.task)
        self.reset_client = (self.create_client(ResetSim, self.p.reset_service)
                             if self.p.reset == 'sim' else self.create_client(Trigger, 'home'))
        self.run_client = ActionClient(self, RunPolicy, self.p.run_action)
        # Opened first: no terminal to ask in is an error before anything moves.
        self.keys = KeyReader(self.p.keys, 'episode_runner') if self.p.judge == 'operator' else None
        self.recorder = None
        if self.p.recorder:
            prefix = self.p.recorder.rstrip('/')
            self.recorder = (self.create_client(StartEpisode, f'{prefix}/start'),
                             self.create_client(StopEpisode, f'{prefix}/stop'))
        self.results = ResultsWriter(self.p.results_dir) if self.p.results_dir else None
        self.ran = self.successes = 0
        self.video = None
        if self.p.video:
            from robosandbox_policy.video import EpisodeVideo
            self.video = EpisodeVideo(self, f'cameras/{self.p.video}/image_raw',
                                      Path(self.p.results_dir or '.') / 'videos')

    def _wait_for_servers(self) -> None:
        timeout = self.p.wait_timeout
        if not self.reset_client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f'no {self.reset_client.srv_name} service after {timeout:g} s')
        if self.video:
            self._wait_for_camera(timeout)
        self._wait_for_policy(timeout)
        for client in self.recorder or ():
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f'no {client.srv_name} service after {timeout:g} s')
        if self.p.viewer:
            self._wait_for_viewer(timeout)

    def _wait_for_camera(self, timeout: float, settle: float = CAMERAS_SETTLE) -> None:
        """The video's camera must be published before anything moves: a name no camera
        has would give no video, silently. A backend's cameras come up together, so once
        others have been published for ``settle`` s without this one, it is not coming;
        with none at all, the wait lasts ``timeout``."""
        topic = self.resolve_topic_name(f'cameras/{self.p.video}/image_raw')
        prefix = self.resolve_topic_name('cameras') + '/'
        start, others_since = time.monotonic(), None
        while self.count_publishers(topic) == 0:
            cameras = sorted(name[len(prefix):-len('/image_raw')] for name, _types in self.get_topic_names_and_types()
                             if name.startswith(prefix) and name.endswith('/image_raw')
                             and self.count_publishers(name))       # not our own subscription's topic
            now = time.monotonic()
            others_since = others_since or (now if cameras else None)
            if now - start > timeout or (others_since is not None and now - others_since > settle):
                raise ValueError(f"video: no camera '{self.p.video}' ({topic} has no publisher); "
                                 f"cameras: {', '.join(cameras) or 'none'}")
            spin_for(self, 0.1)

    def _wait_for_viewer(self, timeout: float) -> None:
        """Wait for the viewer to watch task_status, the last of the streams it subscribes
        to once its recording is open: it joins the graph seconds before (Rerun's start),
        and an episode begun meanwhile would be missing from it. A viewer is no reason to
        stop a recording job: after ``timeout`` the episodes go on without it."""
        topic = self.resolve_topic_name('task_status')
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                watched = self.get_subscriber_names_and_types_by_node('viewer', self.get_namespace())
            except NodeNameNonExistentError:
                watched = []
            if any(name == topic for name, _types in watched):
                return
            spin_for(self, 0.1)
        self.get_logger().warning(f'no viewer watching {topic} after {timeout:g} s; going on without it')

    def _wait_for_policy(self, timeout: float) -> None:
        """Wait for the run action by readiness, not by a fixed time: the policy node
        joins the graph at once and serves the action only once its checkpoint has
        loaded (28-60 s for ACT on a busy 2-core machine). So ``timeout`` bounds the
        wait for the node to appear; after that the wait lasts while the node is up,
        and ends with an error if it goes away (its load failed)."""
        node = self.resolve_topic_name(self.p.run_action).rsplit('/', 1)[0]   # policy/run -> /policy
        namespace, name = node.rsplit('/', 1)
        namespace = namespace or '/'
        deadline, seen = time.monotonic() + timeout, False
        while not self.run_client.server_is_ready():
            up = (name, namespace) in self.get_node_names_and_namespaces()
            if up and not seen:
                self.get_logger().info(f'{node} is up; waiting for it to load its policy')
            if seen and not up:
                raise RuntimeError(f'{node} went away before serving {self.p.run_action} (see its log)')
            seen = seen or up
            if not seen and time.monotonic() > deadline:
                raise TimeoutError(f'no {node} node (for {self.p.run_action}) after {timeout:g} s')
            spin_for(self, 0.2)

    def run_episode(self, seed: int, index: int = 0) -> tuple[RunPolicy.Result, str, StopEpisode.Response | None]:
        """Reset, run (and record) episode ``index``; its result, verdict and recording."""
        if self.p.reset == 'sim':
            reset = wait_future(self, self.reset_client.call_async(
                ResetSim.Request(task=self.p.task, seed=seed)))
        else:
            reset = wait_future(self, self.reset_client.call_async(Trigger.Request()), timeout=120.0)
        if not reset.success:
            raise RuntimeError(f'{self.p.reset} reset failed: {reset.message}')
        if self.p.reset == 'home' and self.p.reset_pause > 0:
            print(f'home; next episode in {self.p.reset_pause:g} s: reset the scene', flush=True)
            spin_for(self, self.p.reset_pause)
        instruction = self.p.instruction or self.task.instruction
        if self.recorder:
            self._start_recording(StartEpisode.Request(
                task=self.task.name, instruction=instruction, seed=seed, policy=self.p.policy))
        if self.video:
            self.video.start(f'episode_{index:04d}_seed_{seed}')
        try:
            result = self._run_policy(instruction)
        finally:
            if self.video:
                self.video.stop()
        outcome = verdict(result) if self.keys is None else self._ask_operator(index, result)
        if not self.recorder:
            return result, outcome, None
        stopped = wait_future(self, self.recorder[1].call_async(StopEpisode.Request(
            success=outcome == 'SUCCESS', success_known=outcome != 'UNKNOWN', end_reason=result.reason)))
        return result, outcome, stopped

    def _start_recording(self, request: StartEpisode.Request) -> None:
        """Start the episode's bag. A recorder that waits for its topics to flow (a camera
        still coming up) is asked again for up to ``wait_timeout``; any other refusal, or
        topics that never flow, end the run with the recorder's reason."""
        deadline = time.monotonic() + self.p.wait_timeout
        while True:
            started = wait_future(self, self.recorder[0].call_async(request))
            if started.success:
                return
            if not started.message.startswith(NOT_FLOWING) or time.monotonic() > deadline:
                raise RuntimeError(f'the recorder did not start: {started.message}')
            spin_for(self, 0.5)

    def _ask_operator(self, index: int, result: RunPolicy.Result) -> str:
        question = (f'episode {index + 1}/{self.p.episodes} ended after {result.elapsed:.1f} s ({result.reason}): '
                    'did it succeed? y / n')
        print(question, flush=True)
        while True:
            key = self.keys.read(0.2)
            if self.keys.closed_by_peer:
                raise RuntimeError(f"the operator's terminal {self.p.keys} closed before an answer")
            if not rclpy.ok():
                raise ExternalShutdownException()
            if key in ('y', 'n'):
                outcome = 'SUCCESS' if key == 'y' else 'FAILURE'
                print(f'  operator: {outcome}', flush=True)
                return outcome
            if key is not None:
                print(f'  {key!r}? {question}', flush=True)

    def destroy_node(self) -> None:
        if self.keys is not None:
            self.keys.close()
        super().destroy_node()

    def _run_policy(self, instruction: str) -> RunPolicy.Result:
        goal = RunPolicy.Goal(
            task=instruction,
            max_duration=self.p.max_duration or self.task.time_limit,
            stop_on_success=True, success_hold=self.p.success_hold)
        # Wait by progress, not by a fixed time: sim time may run much slower than
        # wall time (lockstep with a slow policy), but a run that is alive sends
        # feedback every tick it acts.
        last_progress = [time.monotonic()]
        try:
            handle = send_goal(self, self.run_client, goal, server_timeout=self.p.wait_timeout,
                               feedback_callback=lambda _: last_progress.__setitem__(0, time.monotonic()))
        except ActionRefused as e:
            raise RuntimeError(f'{e} (is another run active?)') from None
        future = handle.get_result_async()
        while not future.done():
            if time.monotonic() - last_progress[0] > self.p.wait_timeout + 2.0 * goal.success_hold:
                raise RuntimeError(f'the policy run made no progress for {self.p.wait_timeout:g} s')
            rclpy.spin_once(self, timeout_sec=0.1)
        return future.result().result

    def run(self) -> int:
        self._wait_for_servers()
        episodes, first_seed = int(self.p.episodes), int(self.p.seed)
        for i in range(episodes):
            seed = first_seed + i
            result, outcome, recorded = self.run_episode(seed, i)
            self.ran += 1
            self.successes += outcome == 'SUCCESS'
            print(f'{progress_bar(i + 1, episodes)} episode {i + 1}/{episodes} {self.task.name} seed {seed}: '
                  f'{outcome} after {result.elapsed:.2f} s, {result.steps} steps'
                  + (f', {result.missed_ticks} missed ticks' if result.missed_ticks else '')
                  + f' ({result.reason}); {self.successes}/{i + 1} so far', flush=True)
            if self.results:
                self.results.add(EpisodeResult(
                    episode=i, seed=seed, success=outcome == 'SUCCESS', verdict=outcome,
                    time_to_success=round(result.time_to_success, 4)
                    if outcome == 'SUCCESS' and self.keys is None else None,
                    elapsed=round(result.elapsed, 4), steps=result.steps,
                    missed_ticks=result.missed_ticks, end_reason=result.reason))
            if recorded is not None:
                state = 'complete' if recorded.complete else f'INCOMPLETE ({recorded.message})'
                print(f'  recorded {recorded.bag_path}: {state}, {recorded.messages} messages, '
                      f'{recorded.dropped} dropped', flush=True)
        self.summarize()
        return 0

    def summarize(self, stopped: bool = False) -> None:
        """The summary line and, with results_dir, summary.json: after the last episode,
        or, ``stopped`` early (Ctrl-C, SIGTERM), of the episodes that had ended, if any."""
        if stopped and not self.ran:
            return
        episodes = int(self.p.episodes)
        print(f'summary: {self.successes}/{self.ran} episodes succeeded on {self.task.name}'
              + (f' (stopped after {self.ran} of {episodes})' if stopped else ''), flush=True)
        if self.results:
            self.results.finish(policy=self.p.policy, task=self.task.name, judge=self.p.judge,
                                first_seed=int(self.p.seed), requested_episodes=episodes, stopped_early=stopped,
                                success_hold=self.p.success_hold,
                                max_duration=self.p.max_duration or self.task.time_limit)


def main(args=None) -> int:
    init(args)
    code, node = 1, None
    try:
        node = EpisodeRunner()
        code = node.run()
    except (KeyboardInterrupt, ExternalShutdownException):
        code = _interrupted(node)
    except (TaskError, TimeoutError, RuntimeError, ValueError, NoTerminal) as e:
        if rclpy.ok():
            rclpy.logging.get_logger('episode_runner').fatal(str(e))
        else:   # SIGTERM shut the context down under a call: a requested stop too
            code = _interrupted(node)
    finally:
        if node is not None:
            node.destroy_node()      # gives the operator's terminal back its settings
        shutdown()
    return code


def _interrupted(node: EpisodeRunner | None) -> int:
    # Ctrl-C or SIGTERM: a requested stop, so a normal exit (the bringup's
    # other nodes, and any recording, stop with it). The episodes that ended are
    # summarized; a second Ctrl-C (ros2 launch sends one too) does not cut that short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print('episode runner interrupted; stopping', flush=True)
    if node is not None:
        node.summarize(stopped=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
