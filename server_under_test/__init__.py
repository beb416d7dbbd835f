"""The reference multi-node channel server: what the harness is pointed at by default.

One OS process per node (`python -m server_under_test --node n1 ...`). It speaks the Phoenix
Channels protocol (`harness.phoenix`, the only harness module it imports) well enough for the
official npm `phoenix` client, runs the demo app of `shared/design.md` (rooms, idempotent
`new_msg` persisted in a shared SQLite store, `history`), links to its peers with a
fire-and-forget mesh PubSub (or through a Redis server), and can switch on one deliberate
defect with `--bug NAME`.

    __main__   command line
    _node      one node: listeners, signal handling, /health and /stats
    _edge      HTTP + WebSocket on one port (h11 + wsproto), the outbound byte buffer
    _socket    one Phoenix socket: the channel table and the protocol rules
    _app       the demo application's RoomChannel
    _pubsub    local subscriptions and the mesh links to peers
    _redis     the Redis PubSub adapter (one channel, every node subscribed)
    _resp      RESP2, the Redis wire protocol, without I/O
    _store     the SQLite source of truth
    _bugs      the catalogue of deliberate defects
"""
