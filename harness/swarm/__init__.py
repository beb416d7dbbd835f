"""The client swarm: clients that behave like phoenix.js, over trio-websocket.

SwarmClient   one client: the sans-io `harness.phoenix.ClientSocket` driven over a websocket
Swarm         many clients and publishers in one trio loop
plan_clients  the seeded plan: topics and first node per client
RunClock      the run's shared monotonic clock
"""

from ._client import ClientConfig as ClientConfig
from ._client import Node as Node
from ._client import OnReconnect as OnReconnect
from ._client import Recorder as Recorder
from ._client import SwarmClient as SwarmClient
from ._clock import RunClock as RunClock
from ._processes import SwarmProcesses as SwarmProcesses
from ._processes import WorkerFailed as WorkerFailed
from ._reader import read_rooms as read_rooms
from ._swarm import Placement as Placement
from ._swarm import Swarm as Swarm
from ._swarm import SwarmConfig as SwarmConfig
from ._swarm import SwarmStats as SwarmStats
from ._swarm import plan_clients as plan_clients
