"""The operator's keys during a teleop recording: what each does, with a recorder stand-in
that keeps bags as directories (the recorder node itself is tested in robosandbox_data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from robosandbox_teleop.session import HELP, RecordingSession, SessionError


class Bags:
    """A recorder: start makes a bag directory, stop keeps or deletes it."""

    def __init__(self, root: Path):
        self.root, self.current, self.resets, self.outcomes = root, None, [], {}
        self.fail_stop = False

    def reset(self, seed):
        self.resets.append(seed)

    def start(self, seed):
        self.current = self.root / f'episode_{len(list(self.root.iterdir()))}_seed{seed}'
        self.current.mkdir()
        return str(self.current)

    def stop(self, success, discard):
        if self.fail_stop:
            raise SessionError('no answer from /recorder/stop')
        bag, self.current = self.current, None
        if discard:
            self.delete(bag)
        else:
            self.outcomes[bag.name] = success
        return str(bag)

    def delete(self, bag):
        Path(bag).rmdir()


def kept(root):
    return sorted(p.name for p in root.iterdir())


def test_keys_start_stop_discard_and_record_the_last_again(tmp_path):
    bags = Bags(tmp_path)
    session = RecordingSession(bags, seed=5)
    assert 'not recording' in session.press('s')
    assert 'recording episode 1 (seed 5)' in session.press('r')
    assert 'already recording' in session.press('r')
    assert 'kept' in session.press('s')                   # seed 5, a success
    session.press('r')
    assert 'discarded' in session.press('d')              # seed 6 thrown away ...
    assert 'seed 6' in session.press('r')                 # ... and recorded again
    assert 'as a failure' in session.press('f')
    assert kept(tmp_path) == ['episode_0_seed5', 'episode_1_seed6']
    assert 'seed 6' in session.press('b')                 # the last kept one, again
    session.press('s')
    assert kept(tmp_path) == ['episode_0_seed5', 'episode_1_seed6']
    assert bags.outcomes['episode_1_seed6'] is True
    assert bags.resets == [5, 6, 6, 6]                     # the scene reset before every start
    assert session.kept == 2 and session.seed == 7
    assert session.press('x') == HELP


def test_quit_keeps_the_running_episode_with_its_outcome_unknown(tmp_path):
    bags = Bags(tmp_path)
    session = RecordingSession(bags)
    session.press('r')
    assert 'outcome unknown' in session.press('q')
    assert bags.outcomes == {'episode_0_seed0': None}
    assert 'no episode kept yet' in RecordingSession(Bags(tmp_path)).press('b')


def test_a_failed_stop_leaves_the_episode_recording_to_try_again(tmp_path):
    bags = Bags(tmp_path)
    session = RecordingSession(bags)
    session.press('r')
    bags.fail_stop = True
    with pytest.raises(SessionError):
        session.press('s')
    assert session.recording
    bags.fail_stop = False
    assert 'kept' in session.press('s')
