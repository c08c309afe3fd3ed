"""``teleop_session``: the operator's keys, in a terminal, mark the episodes of a teleop recording.

rclpy glue around ``RecordingSession``: keys are read from a terminal
(``keys``, default the controlling terminal ``/dev/tty``, so it works inside a
bringup), and become calls of the recorder's ``recorder/start`` and
``recorder/stop`` and, in sim, ``sim/reset`` with each episode's seed. The
episodes are bags like the policy's: ``robosandbox export-lerobot`` exports
them, the action being what the teleoperator commanded (``teleop/action``).
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import select
import shutil
import termios
import threading
import tty

from rclpy.node import Node

from robosandbox_control.parameters import declare, parameter
from robosandbox_control.spinning import run_node
from robosandbox_msgs.srv import ResetSim, StartEpisode, StopEpisode
from robosandbox_sim.task import load_task, TaskError
from robosandbox_teleop.session import HELP, RecordingSession, SessionError


@dataclass
class SessionParameters:
    """Parameters of ``teleop_session``, fixed for the session."""

    keys: str = parameter('/dev/tty', 'Terminal the keys are read from (the controlling terminal by default).',
                          read_only=True)
    task: str = parameter('pick_cube', 'Task of the episodes (its name and instruction go into each bag).',
                          read_only=True)
    instruction: str = parameter('', "Language instruction of the episodes; '' = the task's own.",
                                 read_only=True)
    seed: int = parameter(0, 'Seed of the first episode; each kept one moves to the next.', read_only=True,
                          range=(0, 2**31 - 1))
    reset_service: str = parameter('', "Service resetting the scene to an episode's seed before it starts "
                                       "(sim/reset in sim); '' = none (hardware).", read_only=True)
    service_timeout: float = parameter(30.0, 'Seconds to wait for the recorder and the reset.', read_only=True,
                                       range=(1.0, 600.0))


class SessionNode(Node):

    def __init__(self, **kwargs):
        super().__init__('teleop_session', **kwargs)
        self._terminal: tuple[int, list] | None = None      # what destroy_node restores
        self.running = False
        p = self.p = declare(self, SessionParameters)
        task = load_task(p.task)
        self.task, self.instruction = task.name, p.instruction or task.instruction
        self._start = self.create_client(StartEpisode, 'recorder/start')
        self._stop = self.create_client(StopEpisode, 'recorder/stop')
        self._reset = self.create_client(ResetSim, p.reset_service) if p.reset_service else None
        try:
            fd = os.open(p.keys, os.O_RDONLY | os.O_NOCTTY)
        except OSError as e:
            raise SessionError(f'no terminal to read keys from ({p.keys}: {e.strerror}); run '
                               'teleop_session in a terminal, or give keys:=<a tty>') from None
        if os.isatty(fd):
            self._terminal = (fd, termios.tcgetattr(fd))
            tty.setcbreak(fd)       # one key at a time, no echo; Ctrl-C still interrupts
        self._fd = fd
        self.session = RecordingSession(self, seed=p.seed)
        self.running = True
        self._thread = threading.Thread(target=self._read_keys, name='keys', daemon=True)
        self._thread.start()
        self.get_logger().info(f'teleop recording of {self.task!r}: {HELP}')

    # --- the Recorder the session drives ---------------------------------------------

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
        response = self._call(self._stop, StopEpisode.Request(
            success=bool(success), success_known=success is not None, discard=discard,
            end_reason='operator: ' + ('discarded' if discard else {True: 'success', False: 'failure',
                                                                    None: 'session ended'}[success])), 'stop')
        if not response.stopped:
            raise SessionError(f'the recorder did not stop: {response.message}')
        if not discard and not response.complete:
            self.get_logger().error(f'{response.bag_path} is incomplete: {response.message}')
        return response.bag_path

    def delete(self, bag: str) -> None:
        shutil.rmtree(bag, ignore_errors=True)

    # --- keys ---------------------------------------------------------------------------

    def _read_keys(self) -> None:
        log = self.get_logger()
        while self.running:
            ready, _, _ = select.select([self._fd], [], [], 0.1)
            if not ready:
                continue
            data = os.read(self._fd, 1)
            if not data:            # the terminal went away
                self.running = False
                break
            key = data.decode(errors='replace')
            if key.isspace():
                continue
            try:
                log.info(self.session.press(key))
                if key == 'q':
                    self.running = False
            except SessionError as e:
                log.error(str(e))

    def destroy_node(self) -> None:
        # Ctrl-C mid-episode: the recorder closes the bag itself (outcome unknown).
        self.running = False
        if getattr(self, '_thread', None) is not None:
            self._thread.join(timeout=2.0)
        if self._terminal is not None:
            fd, attributes = self._terminal
            termios.tcsetattr(fd, termios.TCSADRAIN, attributes)
        if getattr(self, '_fd', None) is not None:
            os.close(self._fd)
        super().destroy_node()


def main(args=None) -> int:
    return run_node('teleop_session', SessionNode, (SessionError, TaskError, ValueError),
                    alive=lambda node: node.running, args=args)


if __name__ == '__main__':
    raise SystemExit(main())
