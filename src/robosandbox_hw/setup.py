from setuptools import find_packages, setup

package_name = 'robosandbox_hw'

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
    description='SO-101 hardware node on Feetech STS3215 servos, with the same ROS contract as the simulation.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'so101_node = robosandbox_hw.so101_node:main',
            'so101_emulator = robosandbox_hw.emulator_node:main',
        ],
    },
)
