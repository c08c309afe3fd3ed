"""The Foxglove bridge: a Foxglove client (foxglove-sdk's WebSocket protocol,
subprotocol foxglove.sdk.v1, spoken here with the websockets library) sees the sim's topics and receives
their CDR bytes, decodable by the ros2msg definition it was given."""

import json
import struct
import time

import pytest
from websockets.sync.client import connect

from robosandbox_cli.processes import free_port, NodeProcess
from robosandbox_data.episodes.bag import decode
from robosandbox_description.robot import load_robot
from robosandbox_viewer.foxglove_node import ros2msg_definition

pytestmark = pytest.mark.nodes



def test_definitions_carry_the_types_they_use():
    text = ros2msg_definition('sensor_msgs/msg/JointState')
    assert 'std_msgs/Header header' in text and 'MSG: std_msgs/Header' in text
    assert 'MSG: robosandbox' not in text
    assert 'object_poses' in ros2msg_definition('robosandbox_msgs/msg/TaskStatus')
    assert ros2msg_definition('no_such_msgs/msg/Nothing') is None


def test_a_foxglove_client_receives_the_sims_joint_states():
    port = free_port()
    sim = NodeProcess('robosandbox_sim', 'sim_node', 'camera_width:=160', 'camera_height:=120')
    bridge = NodeProcess('robosandbox_viewer', 'foxglove_bridge', f'port:={port}',
                         'topics:=[/joint_states, /task_status, /robot_description]')
    try:
        # The server is up once the node says so.
        deadline = time.monotonic() + 60
        while 'Foxglove WebSocket: ws://' not in bridge.output.text():
            assert time.monotonic() < deadline and bridge.returncode is None, bridge.output.text()
            time.sleep(0.1)
        channels = {}
        with connect(f'ws://127.0.0.1:{port}', subprotocols=['foxglove.sdk.v1'], open_timeout=30) as ws:
            while '/joint_states' not in channels:
                message = json.loads(ws.recv(timeout=30))
                if message['op'] == 'advertise':
                    channels.update({c['topic']: c for c in message['channels']})
            joint_states = channels['/joint_states']
            assert joint_states['encoding'] == 'cdr' and joint_states['schemaEncoding'] == 'ros2msg'
            assert joint_states['schemaName'] == 'sensor_msgs/msg/JointState'
            assert set(channels) <= {'/joint_states', '/task_status', '/robot_description'}, channels
            ws.send(json.dumps({'op': 'subscribe', 'subscriptions': [{'id': 7, 'channelId': joint_states['id']}]}))
            while True:
                frame = ws.recv(timeout=30)
                if isinstance(frame, bytes) and frame[0] == 1:       # message data
                    break
        subscription, = struct.unpack_from('<I', frame, 1)
        assert subscription == 7
        msg = decode(frame[13:], 'sensor_msgs/msg/JointState')
        assert list(msg.name) == list(load_robot('so101').joints)
    finally:
        bridge.close()
        sim.close()
    assert bridge.returncode == 0, bridge.output.text()
