"""Recording demonstrations by hand: the operator's keys and what each does, free of ROS.

While a teleoperator drives the arm, the operator marks episodes with keys:
start one, stop it as a success or a failure, discard it, or throw the last
kept one away and record it again (the same seed). ``RecordingSession`` holds
that state; a ``Recorder`` (the session node: the recorder's services and the
sim's reset) does the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

KEYS = {
    'r': 'start',       # reset (sim) and start recording an episode
    's': 'success',     # stop: the task was done
    'f': 'failure',     # stop: it was not
    'd': 'discard',     # stop and delete the episode being recorded
    'b': 'rerecord',    # delete the last kept episode; record its seed again
    'q': 'quit',
}
HELP = ('keys: r start an episode | s stop: success | f stop: failure | d discard it | '
        'b delete the last one and record it again | q quit')


class SessionError(RuntimeError):
    """A recorder or reset call failed; the message says why. The session's state
    is as before the key (a failed stop can be tried again)."""


class Recorder(Protocol):
    def reset(self, seed: int) -> None: ...
    def start(self, seed: int) -> str: ...                      # the bag's path
    def stop(self, success: bool | None, discard: bool) -> str: ...   # None: unknown; the bag's path
    def delete(self, bag: str) -> None: ...


@dataclass
class RecordingSession:
    recorder: Recorder
    seed: int = 0                     # of the next episode (the sim's layout)
    recording: bool = False
    kept: int = 0
    last_bag: str = ''                # the last episode kept, for rerecord
    last_seed: int = -1

    def press(self, key: str) -> str:
        """Do what ``key`` means; a line for the operator. Unknown keys get the help."""
        action = KEYS.get(key)
        if action is None:
            return HELP
        if action == 'quit':
            return self.quit()
        if action in ('start', 'rerecord'):
            if self.recording:
                return 'already recording: s, f or d first'
            if action == 'rerecord':
                if not self.last_bag:
                    return 'no episode kept yet to record again'
                self.recorder.delete(self.last_bag)
                self.kept -= 1
                self.seed, self.last_bag = self.last_seed, ''
            self.recorder.reset(self.seed)
            bag = self.recorder.start(self.seed)
            self.recording = True
            return f'recording episode {self.kept + 1} (seed {self.seed}) in {bag}'
        if not self.recording:
            return 'not recording: r starts an episode'
        discard = action == 'discard'
        bag = self.recorder.stop(success=action == 'success', discard=discard)
        self.recording = False
        if discard:
            return f'discarded {bag}; r records seed {self.seed} again'
        self.kept += 1
        self.last_bag, self.last_seed = bag, self.seed
        self.seed += 1
        return f'kept {bag} as a {action} ({self.kept} kept); r starts the next one'

    def quit(self) -> str:
        """End the session; an episode being recorded is kept with no outcome known."""
        if not self.recording:
            return f'{self.kept} episodes kept'
        bag = self.recorder.stop(success=None, discard=False)
        self.recording = False
        return f'stopped {bag} (outcome unknown); {self.kept} episodes kept before it'
