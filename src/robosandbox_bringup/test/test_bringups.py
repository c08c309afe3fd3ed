"""Bringup descriptions, launch files and ``robosandbox launch`` / ``run`` as a user runs them."""

import os
from pathlib import Path
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

from robosandbox_cli.bringup import available_bringups, BringupError, load_bringup, substitute
from robosandbox_cli.processes import pid_alive

pytestmark = pytest.mark.nodes     # starts ROS node processes: not in `make test-fast`

SOURCE = Path(__file__).resolve().parents[1]
ROBOSANDBOX = [sys.executable, '-m', 'robosandbox_cli.main']


def test_every_launch_file_is_a_bringup_installed():
    sources = {p.name.removesuffix('.launch.yaml') for p in (SOURCE / 'launch').glob('*.launch.yaml')}
    assert set(available_bringups()) == sources
    assert not list((SOURCE / 'launch').glob('*.launch.py'))      # one description per bringup


@pytest.mark.parametrize('name', sorted(p.name.removesuffix('.launch.yaml')
                                        for p in (SOURCE / 'launch').glob('*.launch.yaml')))
def test_every_bringup_takes_a_namespace_and_requires_its_nodes(name):
    bringup = load_bringup(name)
    assert 'namespace' in {a.name for a in bringup.arguments}
    for node, args in bringup.commands({'namespace': 'arm1'}):
        assert '__ns:=/arm1' in args, (node.name, args)
    for node, args in bringup.commands({}):
        assert not any(a.startswith('__ns:=') for a in args)     # root by default
        if name.startswith('sim'):                              # one clock: sim time everywhere
            assert 'use_sim_time:=true' in args, (node.name, args)


def test_commands_substitute_arguments_and_keep_yaml_typing():
    bringup = load_bringup('sim')
    (node, args), = bringup.commands({'task': 'push_cube', 'seed': '4'})
    assert node.name == 'sim' and node.executable == 'sim_node'
    assert args[:3] == ['--ros-args', '-r', '__node:=sim']
    assert '-p' in args and 'task:=push_cube' in args and 'seed:=4' in args
    params_file = Path(args[args.index('--params-file') + 1])          # $(find-pkg-share ...)
    assert params_file.is_file() and params_file.parent.name == 'config'


@pytest.mark.parametrize('name', ['sim_policy', 'sim_record', 'hw_policy', 'hw_record', 'hw_eval'])
def test_policy_bringups_take_the_knobs_a_learned_policy_needs(name):
    # A trained checkpoint needs them from the command line (issue 14's trial did not have them).
    given = {'action_tolerance': '0.05', 'torch_threads': '2', 'max_duration': '12.5', 'wait_timeout': '180.0'}
    args = {node.name: a for node, a in load_bringup(name).commands(given)}
    assert {'action_tolerance:=0.05', 'torch_threads:=2'} <= set(args['policy'])
    assert {'max_duration:=12.5', 'wait_timeout:=180.0'} <= set(args['episode_runner'])


def test_substitutions_nest_as_the_launch_frontend_does(monkeypatch):
    monkeypatch.delenv('ROBOSANDBOX_TEST_UNSET', raising=False)
    values = {'x': 'front'}
    assert substitute("$(env ROBOSANDBOX_TEST_UNSET '$(var x)/b')", values) == 'front/b'
    monkeypatch.setenv('ROBOSANDBOX_TEST_SET', 'mine')
    assert substitute('$(env ROBOSANDBOX_TEST_SET $(var x))', values) == 'mine'
    with pytest.raises(BringupError, match='not supported by robosandbox launch'):
        substitute('$(command ls)', values)


def test_an_empty_argument_passes_as_an_empty_value():
    # `robosandbox launch hw` gave `-p calibration_file:=` (its default is empty),
    # which rcl refuses, so the bringup died on its default arguments.
    (node, args), = load_bringup('hw').commands({})
    assert "calibration_file:=''" in args
    # rcl takes that spelling: a node given an empty string parameter so comes up.
    node_argv = ROBOSANDBOX + ['run', 'robosandbox_policy', 'policy_node',
                               '--ros-args', '-p', 'policy:=hold', '-p', "task:=''"]
    assert "policy 'hold'" in node_start(node_argv)


@pytest.mark.parametrize('value, passed', [('replay:', "'replay:'"), ("it's: a b", "'it''s: a b'"),
                                           ('[1, a]', "'[1, a]'"), ('[a', "'[a'"), ('null', "'null'"),
                                           ('0.5', '0.5'), ('[a, b]', '[a, b]'), ('true', 'true')])
def test_a_value_yaml_reads_as_no_parameter_type_passes_as_a_string(value, passed):
    # As ros2 launch passes it (its text); `robosandbox eval --policy replay:` gave rcl
    # `-p policy:=replay:`, which it refused with a traceback ("Couldn't parse parameter
    # override rule"). Typed values pass as they are.
    args, = (a for n, a in load_bringup('sim_eval').commands({'policy': value}) if n.name == 'policy')
    assert f'policy:={passed}' in args


def test_a_node_given_such_a_value_reads_it_as_a_string():
    node_argv = ROBOSANDBOX + ['run', 'robosandbox_policy', 'policy_node', '--ros-args', '-p', "policy:='replay:'"]
    assert "'replay:' names no recording" in node_start(node_argv, 'names no recording')


def node_start(node_argv, started: str = "policy 'hold'") -> str:
    """A node's output until it has said ``started`` or an error, then Ctrl-C."""
    process = subprocess.Popen(node_argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = ''
    try:
        for line in process.stdout:
            out += line
            if started in line or 'rror' in line:
                break
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
    return out


def test_print_gives_valid_shell_commands():
    # Options and launch arguments in any order, as users type them.
    out = subprocess.run(ROBOSANDBOX + ['launch', 'sim_policy', '--print', 'episodes:=7'], capture_output=True,
                         text=True, check=True).stdout
    assert subprocess.run(['bash', '-n', '-c', out]).returncode == 0, out
    assert 'export FASTDDS_DEFAULT_PROFILES_FILE=' in out
    commands = [line for line in out.splitlines() if not line.startswith(('#', 'export '))]
    expected = [args for _, args in load_bringup('sim_policy').commands({'episodes': '7'})]
    assert len(commands) == len(expected) == 3
    for line, args in zip(commands, expected):
        argv = shlex.split(line)
        assert argv[-len(args):] == args            # the same argv, quoted for the shell


def test_unknown_arguments_and_bringups_are_errors():
    with pytest.raises(BringupError, match="no argument\\(s\\) \\['colour'\\]"):
        load_bringup('sim').commands({'colour': 'red'})
    with pytest.raises(BringupError, match='unknown bringup'):
        load_bringup('no_such_bringup')


@pytest.mark.parametrize('name', sorted(p.name.removesuffix('.launch.yaml')
                                        for p in (SOURCE / 'launch').glob('*.launch.yaml')))
def test_the_real_launch_api_reads_the_same_nodes_as_robosandbox_launch(name):
    """Where launch_ros is installed: each launch file through launch's own frontend
    parser and launch_ros's Node, compared with ``robosandbox launch --print``."""
    pytest.importorskip('launch_ros', reason='launch_ros is not installable from PyPI; '
                        'runs on a ROS 2 install')
    from launch import LaunchContext, LaunchDescription
    from launch.frontend import Parser
    from launch_ros.actions import Node

    path = SOURCE / 'launch' / f'{name}.launch.yaml'
    root, parser = Parser.load(str(path))
    description = parser.parse_description(root)
    context = LaunchContext()
    nodes = []

    def visit(entities):
        for entity in entities:
            if isinstance(entity, Node):
                if entity.condition is not None and not entity.condition.evaluate(context):
                    continue                   # leader:=emulated and the like, at their defaults
                entity._perform_substitutions(context)
                nodes.append(entity)
            elif isinstance(entity, LaunchDescription):
                visit(entity.entities)         # what an include brings
            else:                              # arg, set_env: into the context; include: its
                visit(entity.visit(context) or [])   # arguments, then its description

    visit(description.entities)
    ours = load_bringup(name).commands({})
    assert [(n.node_package, n.node_executable, n.node_name.split('/')[-1]) for n in nodes] == \
        [(d.package, d.executable, d.name) for d, _ in ours]
    for node, (_, args) in zip(nodes, ours):
        remaps = [f'{s}:={d}' for s, d in (node.expanded_remapping_rules or [])]
        assert all(r in args for r in remaps), (remaps, args)


def start(*args):
    return subprocess.Popen(ROBOSANDBOX + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def read_until(process, pattern, timeout):
    """Lines of output until one matches ``pattern`` (or the process ends)."""
    lines, deadline = [], time.monotonic() + timeout
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            lines.append(line)
            if re.search(pattern, line):
                return lines
        elif process.poll() is not None:
            break
        else:
            time.sleep(0.05)
    return lines


def test_launch_sim_starts_and_stops_cleanly_on_ctrl_c():
    process = start('launch', 'sim', 'camera_rate:=10')
    try:
        lines = read_until(process, r'\[sim\] .*so101 on task', 60)
        output = ''.join(lines)
        assert re.search(r'\[sim\] .*so101 on task', output), output
        pid = int(re.search(r'started sim \(pid (\d+)\)', output).group(1))
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, rest
    assert 'interrupted; shutting down' in rest
    assert not pid_alive(pid)


def test_nodes_stop_when_their_launcher_is_killed_outright():
    # A SIGKILLed launcher (the OOM killer, a parent's subprocess.run on Ctrl-C) cannot
    # shut its nodes down: they left a sim and a policy node running, orphaned.
    process = start('launch', 'sim_policy', 'episodes:=50')
    output = ''
    try:
        output = ''.join(read_until(process, r'started episode_runner \(pid \d+\)', 60))
        pids = [int(p) for p in re.findall(r'started \w+ \(pid (\d+)\)', output)]
        assert len(pids) == 3, output
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        deadline = time.monotonic() + 30.0
        while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in pids if pid_alive(pid)]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        for pid in re.findall(r'started \w+ \(pid (\d+)\)', output):
            if pid_alive(int(pid)):
                os.kill(int(pid), signal.SIGKILL)


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_the_episode_runner_exits_0_when_stopped(sig):
    # Waiting for a sim that never comes, as when a user stops a bringup early:
    # Ctrl-C or SIGTERM is a requested stop (it exited 1 before).
    import rclpy
    from robosandbox_cli.processes import NodeProcess
    runner = NodeProcess('robosandbox_policy', 'episode_runner', 'wait_timeout:=120.0')
    rclpy.init()
    probe = rclpy.create_node('runner_probe')
    try:
        deadline = time.monotonic() + 60.0
        while 'episode_runner' not in probe.get_node_names() and time.monotonic() < deadline:
            rclpy.spin_once(probe, timeout_sec=0.1)
        assert 'episode_runner' in probe.get_node_names(), runner.output.text()
        runner.child.process.send_signal(sig)
        assert runner.child.process.wait(30) == 0, runner.output.text()
        runner.child.reader.join(timeout=5.0)          # all of its output read
        assert 'interrupted' in runner.output.text()
    finally:
        probe.destroy_node()
        rclpy.shutdown()
        runner.close()


def test_a_failing_node_shuts_the_bringup_down():
    process = start('launch', 'sim', 'task:=no_such_task')
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    assert "unknown task 'no_such_task'" in output
    assert 'sim failed with exit status 1; shutting down' in output


def test_sim_demo_tours_the_interface():
    # The README's "second terminal" flow, end to end: topics, action, reset.
    process = start('launch', 'sim_demo')
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert re.search(r'receiving at joint_states \d+ Hz, clock \d+ Hz, image \d+ Hz', output)
    assert "trajectory action: error_code 0" in output
    assert "reset to 'pick_cube' with seed 7" in output
    assert 'sim_demo exited cleanly' in output


def test_run_resolves_executables_and_reports_unknown_ones():
    bad = subprocess.run(ROBOSANDBOX + ['run', 'robosandbox_sim', 'no_such_node'],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "no executable 'no_such_node' in package 'robosandbox_sim'" in bad.stderr
    assert 'sim_node' in bad.stderr
    failing = subprocess.run(
        ROBOSANDBOX + ['run', 'robosandbox_sim', 'sim_node', '--ros-args', '-p', 'robot:=no_robot'],
        capture_output=True, text=True, timeout=60)
    assert failing.returncode == 1
    assert "unknown robot 'no_robot'" in failing.stdout


def test_sim_policy_runs_the_expert_episodes_and_exits():
    # The main job (make run) with two episodes: verdict lines, a summary, exit 0;
    # run as .venv/bin/robosandbox from a shell that never activated the venv
    # (it failed on AMENT_PREFIX_PATH, and the sim needs MUJOCO_GL=egl to render).
    clean = {'HOME': os.environ['HOME'], 'PATH': '/usr/bin:/bin',
             'ROS_DOMAIN_ID': os.environ['ROS_DOMAIN_ID'], 'HF_HUB_OFFLINE': '1'}
    process = subprocess.Popen([str(Path(sys.prefix) / 'bin' / 'robosandbox'), 'launch', 'sim_policy',
                                'episodes:=2', 'seed:=10'], env=clean, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output, _ = process.communicate(timeout=180)
    assert process.returncode == 0, output
    verdicts = re.findall(r'episode (\d)/2 pick_cube seed (\d+): (\w+)', output)
    assert verdicts == [('1', '10', 'SUCCESS'), ('2', '11', 'SUCCESS')], output
    assert 'summary: 2/2 episodes succeeded on pick_cube' in output
    assert 'refused' not in output       # every target the expert sent was valid


def test_the_venv_environment_is_defined_once_and_user_values_win():
    from robosandbox_cli.environment import ros_environment, shell_exports
    env = ros_environment({'MUJOCO_GL': 'osmesa'})
    assert env['MUJOCO_GL'] == 'osmesa'                       # the user's choice stays
    assert env['AMENT_PREFIX_PATH'].split(os.pathsep)[0] == sys.prefix
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'].endswith('robosandbox_bringup/config/fastdds.xml')
    exports = shell_exports({'MUJOCO_GL': 'osmesa'})
    assert 'MUJOCO_GL' not in exports and 'export RMW_IMPLEMENTATION=rmw_fastrtps_cpp' in exports
    # What activate evaluates is valid shell that sets those values.
    out = subprocess.run(['bash', '-c', f'{exports}\nprintf %s "$AMENT_PREFIX_PATH"'], capture_output=True,
                         text=True, env={'PATH': '/usr/bin:/bin'}).stdout
    assert out.split(os.pathsep)[0] == sys.prefix


def test_conditions_and_argument_defaults_read_as_launch_reads_them(tmp_path):
    (tmp_path / 'teleop.launch.yaml').write_text("""
launch:
- arg: {name: leader, default: emulated}
- arg: {name: share, default: /opt}
- arg: {name: hand, default: '$(var share)/wave.yaml'}
- node: {pkg: p, exec: e, name: emulator, on_exit: shutdown, if: '$(equals $(var leader) emulated)',
         param: [{name: hand, value: '$(var hand)'}]}
- node: {pkg: p, exec: l, name: real, on_exit: shutdown, unless: '$(equals $(var leader) emulated)'}
- node: {pkg: p, exec: l, name: strict, on_exit: shutdown, if: '$(not-equals $(var share) /opt)'}
- node: {pkg: p, exec: k, name: port, on_exit: shutdown,
         if: '$(and $(not-equals $(var leader) emulated) $(not $(equals $(var leader) keyboard)))'}
- node: {pkg: p, exec: k, name: either, on_exit: shutdown,
         if: '$(or $(equals $(var leader) keyboard) $(equals $(var share) /usr))'}
""")
    bringup = load_bringup('teleop', tmp_path)
    (emulator, args), = bringup.commands({})
    assert emulator.name == 'emulator' and 'hand:=/opt/wave.yaml' in args   # a default's substitutions
    assert [n.name for n, _ in bringup.commands({'leader': '/dev/ttyACM1', 'share': '/usr'})] == \
        ['real', 'strict', 'port', 'either']
    assert [n.name for n, _ in bringup.commands({'leader': 'keyboard'})] == ['real', 'either']
    with pytest.raises(BringupError, match="condition 'maybe' is not a boolean"):
        (tmp_path / 'bad.launch.yaml').write_text(
            'launch:\n- node: {pkg: p, exec: e, name: n, on_exit: shutdown, if: maybe}\n')
        load_bringup('bad', tmp_path)


def test_includes_read_as_launch_reads_them(tmp_path):
    (tmp_path / 'part').mkdir()
    (tmp_path / 'part' / 'viewer.launch.yaml').write_text("""
launch:
- arg: {name: namespace, default: ''}
- arg: {name: use_sim_time, default: 'false'}
- arg: {name: port, default: '9090', description: web port}
- node: {pkg: v, exec: viewer, name: viewer, namespace: '$(var namespace)', on_exit: shutdown,
         param: [{name: use_sim_time, value: '$(var use_sim_time)'}, {name: port, value: '$(var port)'},
                 {name: task, value: '$(var task)'}]}
""")
    (tmp_path / 'sim.launch.yaml').write_text(f"""
launch:
- arg: {{name: namespace, default: arm1}}
- arg: {{name: task, default: pick_cube}}
- arg: {{name: viewer, default: 'false'}}
- node: {{pkg: s, exec: sim, name: sim, on_exit: shutdown}}
- include:
    file: {tmp_path}/part/viewer.launch.yaml
    if: $(var viewer)
    arg: [{{name: use_sim_time, value: 'true'}}, {{name: namespace, value: '$(var namespace)/ui'}}]
""")
    bringup = load_bringup('sim', tmp_path)
    # The user is offered the included file's own arguments, not those the include sets.
    assert [a.name for a in bringup.arguments] == ['namespace', 'task', 'viewer', 'port']
    assert [n.name for n, _ in bringup.commands({})] == ['sim']            # if: false leaves it out
    (_, sim), (viewer, args) = bringup.commands({'viewer': 'true', 'port': '9999', 'task': 'stack'})
    assert viewer.name == 'viewer' and '__ns:=/arm1/ui' in args
    # Set by the include, given by the user, and the includer's own value seen inside.
    assert {'use_sim_time:=true', 'port:=9999', 'task:=stack'} <= set(args)
    with pytest.raises(BringupError, match='has no argument'):
        bringup.commands({'use_sim_time': 'false'})

    for name, text, message in [
            ('loop', f"launch:\n- include: {{file: {tmp_path}/loop.launch.yaml}}\n", 'includes itself'),
            ('missing', "launch:\n- include: {file: /no/such.launch.yaml}\n", 'does not exist'),
            ('varpath', "launch:\n- arg: {name: d}\n- include: {file: '$(var d)/x.launch.yaml'}\n",
             'no such launch argument')]:
        (tmp_path / f'{name}.launch.yaml').write_text(text)
        with pytest.raises(BringupError, match=message):
            load_bringup(name, tmp_path)


@pytest.mark.parametrize('module, slow_step', [
    ('robosandbox_sim.sim_node', 'Simulation'),            # Ctrl-C while MuJoCo loads the model
    ('robosandbox_policy.policy_node', 'make_policy'),     # ... while a checkpoint loads
    ('robosandbox_viewer.viewer_node', 'open_view')])      # ... while the viewer starts serving
def test_ctrl_c_during_a_nodes_start_is_a_clean_stop(module, slow_step):
    # rclpy destroys a node whose construction was cut short: its destroy_node must
    # not trip over what was never made (seen: AttributeError '_thread' in the sim).
    code = (f'import {module} as m\n'
            'def interrupted(*args, **kwargs):\n'
            '    raise KeyboardInterrupt\n'
            f'm.{slow_step} = interrupted\n'
            'raise SystemExit(m.main([]))\n')
    process = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    output = process.stdout + process.stderr
    assert process.returncode == 0 and 'Traceback' not in output, output[-3000:]


def test_ctrl_c_while_a_nodes_modules_import_is_a_clean_stop(tmp_path, monkeypatch):
    # A bringup shut down while a node still imported its modules (torch, LeRobot: seconds)
    # printed a KeyboardInterrupt traceback from the middle of an import.
    from robosandbox_cli.processes import resolve_executable
    (tmp_path / 'slow_nodes.py').write_text('raise KeyboardInterrupt    # Ctrl-C, here in the import\n'
                                            'def main():\n    return 3\n')
    info = tmp_path / 'slow_nodes-1.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: slow_nodes\nVersion: 1.0\n')
    (info / 'entry_points.txt').write_text('[console_scripts]\nslow = slow_nodes:main\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    command = resolve_executable('slow_nodes', 'slow')
    process = subprocess.run(command, capture_output=True, text=True, timeout=60,
                             env={**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)})
    assert process.returncode == 0 and 'Traceback' not in process.stderr, process.stderr
