// Drives the official `phoenix` npm client from the Python test suite.
//
// Reads one JSON command per line on stdin, writes one JSON event per line on stdout, each with
// `t` (ms since the driver started, from a monotonic clock). Transport: the `ws` package
// (Node 20's built-in WebSocket never reports a refused connection, research §3.13).
//
// argv[2]: which client to load, "phoenix" (1.8.16) or "phoenix-1815" (1.8.15).
import { createInterface } from "node:readline";
import WebSocket from "ws";

const pkg = process.argv[2] || "phoenix";
const { Socket } = await import(pkg);
const t0 = performance.now();
const emit = (ev) => process.stdout.write(JSON.stringify({ t: +(performance.now() - t0).toFixed(3), ...ev }) + "\n");
const schedule = (list) => (tries) => list[tries - 1] ?? list[list.length - 1];

let socket = null;
const channels = new Map();

function connect(cmd) {
  const o = cmd.opts || {};
  const opts = { transport: WebSocket, params: o.params || {} };
  for (const k of ["timeout", "heartbeatIntervalMs", "authToken"]) if (o[k] !== undefined) opts[k] = o[k];
  if (o.reconnectAfterMs) opts.reconnectAfterMs = schedule(o.reconnectAfterMs);
  if (o.rejoinAfterMs) opts.rejoinAfterMs = schedule(o.rejoinAfterMs);
  opts.logger = (kind, msg, data) => {
    if (kind === "channel" && /dropping outdated/.test(msg)) emit({ ev: "dropped_stale", msg });
  };
  socket = new Socket(cmd.url, opts);
  socket.onOpen(() => emit({ ev: "open" }));
  socket.onClose((e) => emit({ ev: "close", code: e.code, reason: e.reason, wasClean: e.wasClean }));
  socket.onError(() => emit({ ev: "socket_error" }));
  socket.onMessage((m) => emit({ ev: "frame", topic: m.topic, event: m.event, payload: m.payload, ref: m.ref, join_ref: m.join_ref }));
  socket.connect();
}

function join(cmd) {
  const id = cmd.chan || cmd.topic;
  // `catchUp: {param, field, event}`: the at-least-once idiom, a params closure that phoenix.js
  // evaluates on every join and rejoin, carrying the last position a delivery brought.
  let last = null;
  const c = cmd.catchUp;
  const closure = () => {
    const made = { ...(cmd.params || {}), [c.param]: last };
    emit({ ev: "join_params", chan: id, params: made });
    return made;
  };
  const params = c ? closure : cmd.params || {};
  const ch = socket.channel(cmd.topic, params);
  channels.set(id, ch);
  const original = ch.onMessage.bind(ch);
  ch.onMessage = (event, payload, ref) => {
    if (c && event === c.event && payload && payload[c.field] !== undefined) last = payload[c.field];
    if (!event.startsWith("phx_") && !event.startsWith("chan_reply_")) {
      emit({ ev: "message", chan: id, topic: cmd.topic, event, payload, join_ref: ch.joinRef(), state: ch.state });
    }
    return original(event, payload, ref);
  };
  ch.onError((reason) => emit({ ev: "chan_error", chan: id, reason, state: ch.state }));
  ch.onClose((reason) => emit({ ev: "chan_close", chan: id, reason, state: ch.state }));
  const push = ch.join(cmd.timeout);
  push.receive("ok", (r) => emit({ ev: "join_ok", chan: id, response: r, join_ref: ch.joinRef(), state: ch.state }))
    .receive("error", (r) => emit({ ev: "join_error", chan: id, response: r, join_ref: ch.joinRef(), state: ch.state }))
    .receive("timeout", () => emit({ ev: "join_timeout", chan: id, state: ch.state }));
}

function push(cmd) {
  const ch = channels.get(cmd.chan);
  const payload = cmd.binary ? new Uint8Array(cmd.binary).buffer : (cmd.payload || {});
  const plain = (r) => (r instanceof ArrayBuffer ? { binary: Array.from(new Uint8Array(r)) } : r);
  ch.push(cmd.event, payload, cmd.timeout)
    .receive("ok", (r) => emit({ ev: "reply", tag: cmd.tag, status: "ok", response: plain(r) }))
    .receive("error", (r) => emit({ ev: "reply", tag: cmd.tag, status: "error", response: plain(r) }))
    .receive("timeout", () => emit({ ev: "reply", tag: cmd.tag, status: "timeout" }));
}

const commands = {
  connect,
  join,
  push,
  leave: (cmd) => channels.get(cmd.chan).leave().receive("ok", () => emit({ ev: "leave_ok", chan: cmd.chan })),
  state: (cmd) => emit({ ev: "state", chan: cmd.chan, state: channels.get(cmd.chan).state, connected: socket.isConnected() }),
  disconnect: () => socket.disconnect(() => emit({ ev: "disconnected" })),
  exit: () => process.exit(0),
};

createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  try {
    commands[cmd.cmd](cmd);
  } catch (err) {
    emit({ ev: "driver_error", cmd: cmd.cmd, error: String(err) });
  }
});
process.stdin.on("end", () => process.exit(0));
emit({ ev: "ready", client: pkg });
