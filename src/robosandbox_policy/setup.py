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
    zip_safe=True,
    maintainer='robosandbox maintainers',
    maintainer_email='maintainers@robosandbox.dev',
    description='Policy node for LeRobot checkpoints, replay and a scripted expert; episode recorder and LeRobot dataset export.',
    license='Apache-2.0',
)
