from setuptools import find_packages, setup

package_name = 'robosandbox_viewer'

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
    description='Watching robosandbox in Rerun: a live graph, a recorded episode or a LeRobot dataset, '
                'in a browser.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'viewer = robosandbox_viewer.viewer_node:main',
            'foxglove_bridge = robosandbox_viewer.foxglove_node:main',
        ],
        'robosandbox.commands': [
            'view = robosandbox_viewer.command:add_command',
        ],
    },
)
