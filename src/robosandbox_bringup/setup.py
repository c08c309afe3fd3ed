from glob import glob

from setuptools import setup

package_name = 'robosandbox_bringup'

setup(
    name=package_name,
    version='0.1.0',
    packages=[],  # launch files (the bringups) and configuration only
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.yaml')),
        ('share/' + package_name + '/launch/include', glob('launch/include/*.launch.yaml')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.xml') + glob('config/*.rviz')),
        ('share/' + package_name + '/config/train', glob('config/train/*.yaml')),
        ('share/' + package_name + '/config/teleop', glob('config/teleop/*.yaml')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='robosandbox maintainers',
    maintainer_email='maintainers@robosandbox.dev',
    description='Bringups (launch files) and configurations of robosandbox.',
    license='Apache-2.0',
)
