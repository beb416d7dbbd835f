"""The Phoenix Channels protocol without I/O (stdlib only).

Shared by the harness's client swarm and the reference server: events as frozen dataclasses,
codecs for V2/V1 JSON and V2 binary frames, typed errors, and the client-side socket/channel
state machine with phoenix.js's timings as data (`ClientSocket`, `Timings`). Nothing here
opens a socket, starts a task or reads a clock; drivers feed bytes in and take events out, as
with h11/wsproto.
"""

from ._channel import TRANSITIONS as TRANSITIONS
from ._channel import ChannelState as ChannelState
from ._channel import Timings as Timings
from ._client import ClientSocket as ClientSocket
from ._errors import LocalProtocolError as LocalProtocolError
from ._errors import ProtocolError as ProtocolError
from ._errors import RemoteProtocolError as RemoteProtocolError
from ._events import HEARTBEAT_TOPIC as HEARTBEAT_TOPIC
from ._events import Broadcast as Broadcast
from ._events import ChannelClose as ChannelClose
from ._events import ChannelError as ChannelError
from ._events import ClientEvent as ClientEvent
from ._events import Event as Event
from ._events import Heartbeat as Heartbeat
from ._events import Join as Join
from ._events import Leave as Leave
from ._events import Message as Message
from ._events import Payload as Payload
from ._events import Push as Push
from ._events import Reply as Reply
from ._events import Role as Role
from ._events import ServerEvent as ServerEvent
from ._notices import ChannelClosed as ChannelClosed
from ._notices import ChannelErrored as ChannelErrored
from ._notices import HeartbeatTimedOut as HeartbeatTimedOut
from ._notices import JoinReplied as JoinReplied
from ._notices import JoinSent as JoinSent
from ._notices import JoinTimedOut as JoinTimedOut
from ._notices import Notice as Notice
from ._notices import PushReplied as PushReplied
from ._notices import PushSent as PushSent
from ._notices import PushTimedOut as PushTimedOut
from ._notices import Received as Received
from ._notices import SocketClosed as SocketClosed
from ._notices import SocketOpened as SocketOpened
from ._notices import StaleDropped as StaleDropped
from ._notices import StateChanged as StateChanged
from ._wire import DEFAULT_MAX_FRAME_SIZE as DEFAULT_MAX_FRAME_SIZE
from ._wire import Codec as Codec
from ._wire import V1JSONCodec as V1JSONCodec
from ._wire import V2JSONCodec as V2JSONCodec
from ._wire import codec_for_vsn as codec_for_vsn
from ._wire import depth as depth
from ._wire import dumps as dumps
from ._wire import within_depth as within_depth
