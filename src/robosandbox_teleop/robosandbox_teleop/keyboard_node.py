"""``teleop_keyboard``: the operator's keys, in a terminal: jog the arm, mark recorded episodes.

rclpy glue around ``KeyboardJog`` and ``RecordingSession``. Keys are read from
a terminal (``keys``, default the controlling terminal ``/dev/tty``; under
``robosandbox launch`` the launcher's own), one key at a time. Two roles, each
a parameter:

* ``jog``: keys move a target that ``JogStreamer`` streams to the follower
  at ``rate``, as a leader's would be; the follower is led to it slowly at the
  start and after ``h`` (home).
* ``record``: keys start, stop, discard and redo episodes through the
  recorder's ``recorder/start`` / ``recorder/stop`` and, in sim, ``sim/reset``
  with each episode's seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
import shutil
import threading

from rclpy.node import Node

from robosandbox_control.parameters import declare, parameter
from robosandbox_control.spinning import run_node
from robosandbox_control.terminal import KeyReader, NoTerminal
from robosandbox_description.robot import load_robot, RobotDescriptionError
from robosandbox_msgs.srv import ResetSim, StartEpisode, StopEpisode
from robosandbox_sim.task import load_task, TaskError
from robosandbox_teleop.jog import HELP as JOG_HELP, Jog, JogConfig
from robosandbox_teleop.jog_streamer import JogStreamer
from robosandbox_teleop.session import HELP as RECORD_HELP, KEYS as RECORD_KEYS, RecordingSession, SessionError


@dataclass
class KeyboardParameters:
    """Parameters of ``teleop_keyboard``, fixed for the session; step sizes are live."""

    keys: str = parameter('/dev/tty', 'Terminal the keys are read from (the controlling terminal by default).',
                          read_only=True)
    jog: bool = parameter(False, 'Keys jog the arm: a target streamed on joint_trajectory.', read_only=True)
    record: bool = parameter(True, 'Keys mark recorded episodes (recorder/start, recorder/stop).',
                             read_only=True)
    robot: str = parameter('so101', 'Robot description: joints, limits, home, the URDF for jogging.',
                           read_only=True)
    rate: float = parameter(100.0, 'Targets streamed per second while jogging (wall clock).', read_only=True,
                            range=(1.0, 1000.0))
    step: float = parameter(0.01, 'End-effector step per key, m.', range=(0.001, 0.1))
    joint_step: float = parameter(0.05, 'Joint step per key, rad.', range=(0.001, 0.5))
    approach_velocity: float = parameter(0.3, 'Speed, rad/s per joint, of the slow approach at the start and '
                                              'to home.', range=(0.01, 3.0))
    task: str = parameter('pick_cube', 'Task of the recorded episodes (its name and instruction go into each '
                                       'bag).', read_only=True)
    instruction: str = parameter('', "Language instruction of the episodes; '' = the task's own.",
                                 read_only=True)
    seed: int = parameter(0, 'Seed of the first episode; each kept one moves to the next.', read_only=True,
                          range=(0, 2**31 - 1))
    reset_service: str = parameter('', "Service resetting the scene to an episode's seed before it starts "
                                       "(sim/reset in sim); '' = none (hardware).", read_only=True)
    service_timeout: float = parameter(30.0, 'Seconds to wait for the recorder and the reset.', read_only=True,
                                       range=(1.0, 600.0))


class KeyboardNode(Node):

    def __init__(self, **kwargs):
        super().__init__('teleop_keyboard', **kwargs)
        self._keys: KeyReader | None = None
        self._thread: threading.Thread | None = None
        self.running = False
        p = self.p = declare(self, KeyboardParameters)
        self.session = self.jog = None
        help_lines = []
        if p.record:
            task = load_task(p.task)
            self.task, self.instruction = task.name, p.instruction or task.instruction
            self._start = self.create_client(StartEpisode, 'recorder/start')
            self._stop = self.create_client(StopEpisode, 'recorder/stop')
            self._reset = self.create_client(ResetSim, p.reset_service) if p.reset_service else None
            self.session = RecordingSession(self, seed=p.seed)
            help_lines.append(RECORD_HELP)
        if p.jog:
            self.jog = Jog(load_robot(p.robot), JogConfig(p.step, p.joint_step))
            self.streamer = JogStreamer(self, self.jog, p.rate, p.approach_velocity)
            help_lines.append(JOG_HELP)
        try:
            self._keys = KeyReader(p.keys, 'teleop_keyboard')
        except NoTerminal as e:
            raise SessionError(str(e)) from None
        self.running = True
        self._thread = threading.Thread(target=self._read_keys, name='keys', daemon=True)
        self._thread.start()
        if self.jog:
            self.streamer.start()
        self.get_logger().info(' || '.join(help_lines + ['q quit']))

    # --- the Recorder the session drives ---------------------------------------------------

    def _call(self, client, request, what: str):
        if not client.wait_for_service(timeout_sec=self.p.service_timeout):
            raise SessionError(f'no {client.srv_name} service: is the recorder (or the sim) running?')
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(self.p.service_timeout):
            raise SessionError(f'{what}: no answer from {client.srv_name} in {self.p.service_timeout:g} s')
        return future.result()

    def reset(self, seed: int) -> None:
        if self._reset is not None:
            response = self._call(self._reset, ResetSim.Request(task=self.p.task, seed=seed), 'reset')
            if not response.success:
                raise SessionError(f'reset failed: {response.message}')

    def start(self, seed: int) -> str:
        response = self._call(self._start, StartEpisode.Request(
            task=self.task, instruction=self.instruction, seed=seed if self._reset else -1,
            policy='teleop'), 'start')
        if not response.success:
            raise SessionError(f'the recorder did not start: {response.message}')
        return response.bag_path

    def stop(self, success: bool | None, discard: bool) -> str:
        outcome = 'discarded' if discard else {True: 'success', False: 'failure', None: 'session ended'}[success]
        response = self._call(self._stop, StopEpisode.Request(
            success=bool(success), success_known=success is not None, discard=discard,
            end_reason=f'operator: {outcome}'), 'stop')
        if not response.stopped:
            raise SessionError(f'the recorder did not stop: {response.message}')
        if not discard and not response.complete:
            self.get_logger().error(f'{response.bag_path} is incomplete: {response.message}')
        return response.bag_path

    def delete(self, bag: str) -> None:
        shutil.rmtree(bag, ignore_errors=True)

    # --- keys ------------------------------------------------------------------------------

    def _read_keys(self) -> None:
        log = self.get_logger()
        while self.running:
            key = self._keys.read(0.1)
            if self._keys.closed_by_peer:       # the terminal went away
                self.running = False
                break
            if key is None:
                continue
            try:
                if key == 'q':
                    log.info(self.session.quit() if self.session else 'bye')
                    self.running = False
                elif self.session and key in RECORD_KEYS:
                    log.info(self.session.press(key))
                elif self.jog:
                    log.info(self.streamer.apply(partial(self.jog.press, key), slowly=key == 'h')
                             or JOG_HELP)
            except SessionError as e:
                log.error(str(e))

    def destroy_node(self) -> None:
        # Ctrl-C mid-episode: the recorder closes the bag itself (outcome unknown).
        self.running = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self.jog:
            self.streamer.stop()
        if self._keys is not None:
            self._keys.close()
        super().destroy_node()


def main(args=None) -> int:
    return run_node('teleop_keyboard', KeyboardNode, (SessionError, TaskError, RobotDescriptionError, ValueError),
                    alive=lambda node: node.running, args=args)


if __name__ == '__main__':
    raise SystemExit(main())
