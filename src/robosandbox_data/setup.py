from setuptools import find_packages, setup

package_name = 'robosandbox_data'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='robosandbox maintainers',
    maintainer_email='maintainers@robosandbox.dev',
    description='Episode recording as rosbag2 (MCAP), LeRobot v3 dataset export and episode inspection.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'recorder_node = robosandbox_data.recorder_node:main',
        ],
        'robosandbox.commands': [
            'export-lerobot = robosandbox_data.episodes.export:add_command',
            'inspect = robosandbox_data.episodes.inspect:add_command',
        ],
    },
)
