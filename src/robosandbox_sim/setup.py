from setuptools import find_packages, setup

package_name = 'robosandbox_sim'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={package_name: ['robots/*.yaml', 'robots/*.md', 'tasks/*.yaml', 'tasks/*.md']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='robosandbox maintainers',
    maintainer_email='maintainers@robosandbox.dev',
    description='MuJoCo simulation node for SO-101 class arms.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'sim_node = robosandbox_sim.sim_node:main',
            'sim_demo = robosandbox_sim.sim_demo:main',
        ],
    },
)
