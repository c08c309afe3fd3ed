"""The episode runner's wait for the policy follows readiness, not a fixed time.

In-process, with the graph scripted: the policy node appears at once and serves its
action only once its checkpoint has loaded (28-60 s for ACT on a busy machine, longer
than any fixed wait was).
"""

import dataclasses
import time

import pytest
import rclpy
from rclpy.parameter import Parameter

from robosandbox_policy import episode_runner
from robosandbox_policy.episode_runner import EpisodeRunner


@pytest.fixture
def runner(monkeypatch):
    rclpy.init()
    node = EpisodeRunner(parameter_overrides=[Parameter('wait_timeout', value=0.2)])
    monkeypatch.setattr(episode_runner, 'spin_for', lambda _node, seconds: time.sleep(0.01))
    yield node
    node.destroy_node()
    rclpy.shutdown()


def script(runner, monkeypatch, *, appears: float, ready: float, leaves: float = float('inf')):
    """The policy node is in the graph from ``appears`` to ``leaves`` s; its action server
    is ready from ``ready`` s."""
    start = time.monotonic()
    others = [('episode_runner', '/')]

    def nodes():
        t = time.monotonic() - start
        return others + ([('policy', '/')] if appears <= t < leaves else [])
    monkeypatch.setattr(runner, 'get_node_names_and_namespaces', nodes)
    monkeypatch.setattr(runner.run_client, 'server_is_ready', lambda: time.monotonic() - start >= ready)


def test_a_policy_still_loading_is_waited_for_past_the_timeout(runner, monkeypatch):
    script(runner, monkeypatch, appears=0.05, ready=0.6)       # ready three timeouts later
    start = time.monotonic()
    runner._wait_for_policy(0.2)
    assert time.monotonic() - start >= 0.6


def test_a_policy_node_that_goes_away_while_loading_is_an_error(runner, monkeypatch):
    script(runner, monkeypatch, appears=0.05, ready=10.0, leaves=0.3)
    with pytest.raises(RuntimeError, match='/policy went away before serving policy/run'):
        runner._wait_for_policy(0.2)


def test_no_policy_node_within_the_timeout_is_an_error(runner, monkeypatch):
    script(runner, monkeypatch, appears=10.0, ready=10.0)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match='no /policy node'):
        runner._wait_for_policy(0.2)
    assert time.monotonic() - start < 2.0


def test_the_first_episode_waits_for_a_viewer_to_watch(runner, monkeypatch):
    # The viewer joins the graph long before its recording is open and it subscribes:
    # an episode begun meanwhile was missing from it (its /tf, in a CI run).
    from rclpy.node import NodeNameNonExistentError
    start = time.monotonic()

    def subscriptions(name, namespace):
        t = time.monotonic() - start
        if name != 'viewer' or namespace != '/' or t < 0.1:
            raise NodeNameNonExistentError(name)
        return [('/joint_states', ['sensor_msgs/msg/JointState'])] + (
            [('/task_status', ['robosandbox_msgs/msg/TaskStatus'])] if t >= 0.4 else [])
    monkeypatch.setattr(runner, 'get_subscriber_names_and_types_by_node', subscriptions)
    runner._wait_for_viewer(5.0)
    assert 0.4 <= time.monotonic() - start < 2.0


def test_a_viewer_that_never_watches_is_not_waited_for_past_the_timeout(runner, monkeypatch):
    from rclpy.node import NodeNameNonExistentError
    warnings = []

    def absent(name, namespace):
        raise NodeNameNonExistentError(name)
    monkeypatch.setattr(runner, 'get_subscriber_names_and_types_by_node', absent)
    monkeypatch.setattr(runner, 'get_logger', lambda: type('Log', (), {'warning': warnings.append})())
    start = time.monotonic()
    runner._wait_for_viewer(0.2)
    assert 0.2 <= time.monotonic() - start < 2.0
    assert warnings == ['no viewer watching /task_status after 0.2 s; going on without it']


def camera_graph(runner, monkeypatch, *, published: dict):
    """Camera topics by the time (s) they appear in the graph."""
    start = time.monotonic()

    def publishers(topic):
        t = time.monotonic() - start
        return sum(topic == f'/cameras/{name}/image_raw' and at <= t for name, at in published.items())
    # The graph also holds the video's own subscription, published or not.
    topics = {f'/cameras/{name}/image_raw' for name in [*published, 'front']}
    monkeypatch.setattr(runner, 'get_topic_names_and_types',
                        lambda: [(topic, ['sensor_msgs/msg/Image']) for topic in sorted(topics)])
    monkeypatch.setattr(runner, 'count_publishers', publishers)
    monkeypatch.setattr(runner, 'p', dataclasses.replace(runner.p, video='front'))
    return start


def test_the_videos_camera_is_waited_for(runner, monkeypatch):
    start = camera_graph(runner, monkeypatch, published={'wrist': 0.0, 'front': 0.3})
    runner._wait_for_camera(5.0, settle=2.0)
    assert 0.3 <= time.monotonic() - start < 2.0


def test_a_video_camera_the_backend_does_not_have_is_refused_before_anything_moves(runner, monkeypatch):
    start = camera_graph(runner, monkeypatch, published={'wrist': 0.0, 'top': 0.1})
    with pytest.raises(ValueError, match=r"video: no camera 'front' \(/cameras/front/image_raw has no "
                                         r'publisher\); cameras: top, wrist'):
        runner._wait_for_camera(30.0, settle=0.5)
    assert time.monotonic() - start < 5.0           # once the others have settled, not the whole timeout
    camera_graph(runner, monkeypatch, published={})
    with pytest.raises(ValueError, match='cameras: none'):
        runner._wait_for_camera(0.2, settle=0.5)


def test_a_run_stopped_early_summarizes_the_episodes_that_ended(tmp_path, monkeypatch, capsys):
    # Ctrl-C after 2 of 5 episodes left episodes.jsonl without summary.json, and
    # `robosandbox eval` reported no results at all.
    import signal
    from robosandbox_policy.evaluation import EpisodeResult, read_results
    monkeypatch.setattr(signal, 'signal', lambda *args: None)      # not this test process's Ctrl-C
    rclpy.init()
    try:
        for ended, results in ((0, tmp_path / 'none'), (2, tmp_path / 'two')):
            node = EpisodeRunner(parameter_overrides=[Parameter('episodes', value=5),
                                                      Parameter('results_dir', value=str(results))])
            for i in range(ended):
                node.results.add(EpisodeResult(episode=i, seed=i, success=i == 0, verdict='SUCCESS' if i == 0
                                               else 'FAILURE', time_to_success=None, elapsed=1.0, steps=30,
                                               missed_ticks=0, end_reason='x'))
                node.ran, node.successes = i + 1, 1
            assert episode_runner._interrupted(node) == 0
            node.destroy_node()
    finally:
        rclpy.shutdown()
    assert not (tmp_path / 'none').exists()                 # nothing had ended: nothing to say
    summary, episodes = read_results(tmp_path / 'two')
    assert (summary['episodes'], summary['successes'], summary['requested_episodes']) == (2, 1, 5)
    assert summary['stopped_early'] is True and len(episodes) == 2
    assert 'summary: 1/2 episodes succeeded on pick_cube (stopped after 2 of 5)' in capsys.readouterr().out
