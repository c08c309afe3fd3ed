from glob import glob

from setuptools import find_packages, setup

package_name = 'robosandbox_bringup'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/bringups', glob('bringups/*.yaml')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='robosandbox maintainers',
    maintainer_email='maintainers@robosandbox.dev',
    description='Launch files, configurations and the robosandbox command.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'robosandbox = robosandbox_bringup.cli:main',
        ],
    },
)
