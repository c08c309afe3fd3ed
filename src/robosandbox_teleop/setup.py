from setuptools import find_packages, setup

package_name = 'robosandbox_teleop'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='robosandbox maintainers',
    maintainer_email='maintainers@robosandbox.dev',
    description='Teleoperation of the SO-101, sim or real, through the arm contract: a LeRobot leader arm '
                'or the keyboard, and recording demonstrations.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'so101_leader = robosandbox_teleop.leader_node:main',
            'teleop_keyboard = robosandbox_teleop.keyboard_node:main',
            'teleop_gamepad = robosandbox_teleop.gamepad_node:main',
        ],
    },
)
