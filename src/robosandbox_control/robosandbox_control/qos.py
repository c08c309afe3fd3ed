"""QoS of the topics every backend (sim, hardware) publishes alike."""

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# Camera images are offered reliable: a
# reliable writer serves both kinds of reader, so sensor-data (best-effort)
# subscribers such as the policy node get the newest image at once, while a
# recorder or RViz may ask for reliable delivery. A best-effort writer of
# 0.9 MB images lost half of them on their way to another process here at
# 30 Hz, which a recorder must not. KEEP_LAST: a slow reader never blocks the
# publisher; a second of history lets the reliability protocol repair what a
# busy reader missed (with a depth of 5, a recorder still lost some).
IMAGE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=30,
                       reliability=ReliabilityPolicy.RELIABLE)

# camera_info likewise, and transient local so that a late (or latched-style)
# subscriber gets the camera model at once.
CAMERA_INFO_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=30,
                             reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)

# robot_description and /tf_static, as robot_state_publisher and tf2's static
# broadcaster offer them: the latest value kept for subscribers that come later.
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
# What a watcher (viewer, bridge) asks of a stream: the newest sample only, never
# resent, so it neither queues nor holds up a reliable publisher.
LATEST_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
# /tf, as tf2's broadcaster offers it.
TF_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
