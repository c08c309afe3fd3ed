from setuptools import find_packages, setup

package_name = 'robosandbox_description'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={package_name: ['robots/*.md', 'robots/*/*.yaml', 'robots/*/*.md']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='robosandbox maintainers',
    maintainer_email='maintainers@robosandbox.dev',
    description=('Robot descriptions: URDF and MJCF from PyPI packages plus a sidecar of joints, limits, home, '
                 'gripper, tool frame and cameras; a loader and forward kinematics without MuJoCo or rclpy.'),
    license='Apache-2.0',
    entry_points={
    },
)
