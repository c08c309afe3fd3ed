from setuptools import find_packages, setup

package_name = 'robosandbox_cli'

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
    description=('The robosandbox command: runs bringups as supervised processes without a ROS install, '
                 'runs single nodes and hosts the subcommands other packages register.'),
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'robosandbox = robosandbox_cli.main:main',
        ],
    },
)
