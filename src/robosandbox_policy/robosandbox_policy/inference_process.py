"""A model's inference in a process of its own.

Why: in the node's process, the Python half of an inference (LeRobot's
processors, ACT's modules between torch kernels) shares the GIL with rclpy's
executor, whose every camera image, joint state and clock message is a Python
callback. ACT inferred 1.3-1.5x slower there than LeRobot's bare
``predict_action``. In a process of its own it runs as in LeRobot's loop; the
observation and the chunk cross a socket once per chunk.

:class:`ModelProcess` builds the model in the child and stands for it in the
parent: the model's public description (``DESCRIPTION`` of its class) is copied
over, and ``predict_chunk``, ``reset`` and ``close`` are forwarded. The start
waits until the model has loaded and warmed up, and raises what building it
raised (a broken checkpoint fails before anything moves, with the same error
as in one process). The child runs in a process group of its own, out of
reach of the terminal's Ctrl-C: the node stops it on its way out, and it also
ends when the node's end of the socket closes, however the node ended.
"""

from __future__ import annotations

from multiprocessing.connection import Connection
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading

from robosandbox_policy.policy import PolicyError

_CLOSE_TIMEOUT = 5.0    # s for the child to finish an inference and exit, before SIGTERM


class ModelProcess:

    def __init__(self, factory, *args, **kwargs):
        # A fresh interpreter (``python -m`` this module), neither a fork of a process with
        # rclpy's and DDS's threads running nor multiprocessing's spawn, which re-runs the
        # parent's main script. Its own process group: the terminal's Ctrl-C is the node's.
        ours, theirs = socket.socketpair()
        self._process = subprocess.Popen(
            [sys.executable, '-m', __name__, str(theirs.fileno())], pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL, process_group=0)
        theirs.close()
        self._conn = Connection(ours.detach())
        self._send_lock = threading.Lock()    # reset() may come while an inference runs
        try:
            self._send((factory, args, kwargs))
            description = self._answer('loading the model')
        except BaseException:
            self.close()
            raise
        self.__dict__.update(description)

    @property
    def pid(self) -> int:
        return self._process.pid

    def predict_chunk(self, obs):
        self._send(('predict', obs))
        return self._answer('an inference')

    def reset(self) -> None:
        # No answer: the child resets between inferences, in the order asked.
        self._send(('reset', None))

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self._send(('close', None))
            except PolicyError:
                pass
            try:
                self._process.wait(_CLOSE_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.terminate()
                self._process.wait(_CLOSE_TIMEOUT)
        self._conn.close()

    def _send(self, message) -> None:
        with self._send_lock:
            try:
                self._conn.send_bytes(_dumps(message))
            except OSError as e:
                raise PolicyError(f'the inference process is gone ({self._exit()}): {e}') from None

    def _answer(self, during: str):
        while not self._conn.poll(0.2):
            if self._process.poll() is not None:
                raise PolicyError(f'the inference process ended while {during} ({self._exit()})')
        try:
            failed, payload = pickle.loads(self._conn.recv_bytes())
        except (EOFError, OSError) as e:
            raise PolicyError(f'the inference process ended while {during} ({self._exit()})') from e
        if failed:
            raise payload
        return payload

    def _exit(self) -> str:
        try:
            code = self._process.wait(1.0)     # its socket closes just before it exits
        except subprocess.TimeoutExpired:
            return 'still running'
        return f'killed by {signal.Signals(-code).name}' if code < 0 else f'exit status {code}'


def _serve(conn: Connection) -> None:
    try:
        factory, args, kwargs = pickle.loads(conn.recv_bytes())
        model = factory(*args, **kwargs)
        _reply(conn, False, {name: getattr(model, name) for name in factory.DESCRIPTION})
    except (EOFError, OSError):          # the parent is gone
        return
    except Exception as e:  # noqa: BLE001 - the parent raises it
        _reply(conn, True, e)
        return
    while True:
        try:
            request, payload = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):      # the parent is gone
            return
        if request == 'close':
            return
        if request == 'reset':
            model.reset()
            continue
        try:
            failed, answer = False, model.predict_chunk(payload)
        except Exception as e:  # noqa: BLE001 - the parent's run stops, naming it
            failed, answer = True, e
        try:
            _reply(conn, failed, answer)
        except OSError:                  # the parent is gone
            return


def _reply(conn, failed: bool, payload) -> None:
    try:
        data = _dumps((failed, payload))
    except Exception:  # noqa: BLE001 - an exception that does not pickle: keep its words
        data = _dumps((True, PolicyError(f'{type(payload).__name__}: {payload}')))
    conn.send_bytes(data)


def _dumps(message) -> bytes:
    # Plain bytes, not Connection.send's pickling into a buffer it exports: that buffer,
    # alive in a traceback when the other end is gone, crashed the interpreter at
    # garbage collection ("deallocated BytesIO object has exported buffers").
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == '__main__':
    _serve(Connection(int(sys.argv[1])))
    # Skip torch's interpreter teardown (about a second): nothing is left to write.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
