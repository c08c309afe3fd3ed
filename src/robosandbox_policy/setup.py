from setuptools import find_packages, setup

package_name = 'robosandbox_policy'

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
    description=('Policy node for LeRobot checkpoints, replays, a scripted expert and your own policies; '
                 'the episode runner.'),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'policy_node = robosandbox_policy.policy_node:main',
            'episode_runner = robosandbox_policy.episode_runner:main',
        ],
        'robosandbox.commands': [
            'migrate-checkpoint = robosandbox_policy.migrate:add_command',
            'eval = robosandbox_policy.evaluation:add_command',
        ],
    },
)
