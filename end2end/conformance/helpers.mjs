// Shared helpers for the phoenix.js conformance suite: the server under test (one node, or a cluster with
// PARLEY_CLUSTER=N), sockets built on the official `phoenix` client with the `ws` transport (or its `LongPoll`
// transport), promisified join/push, event recorders, raw long-poll requests, deterministic waiting and per-test
// cleanup.
import { createServer } from "node:net";
import { after } from "node:test";

import { LongPoll, Socket } from "phoenix";
import WebSocket from "ws";

import { startCluster } from "../support/cluster.mjs";
import { startServer } from "../support/server.mjs";

/**
 * How many nodes the suite runs against: PARLEY_CLUSTER=N (N >= 2) runs every test file against a fresh cluster of N
 * nodes (one PostgreSQL, one redis), with the sockets of each test spread over the nodes; unset (or 0/1), one server.
 */
export const CLUSTER = (() => {
  const value = process.env.PARLEY_CLUSTER;
  if (value === undefined || value === "" || value === "0" || value === "1") return 0;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 2) throw new Error(`PARLEY_CLUSTER must be a node count >= 2, not ${value}`);
  return n;
})();

/** A test's `skip` option for tests that only make sense on one node: false, or why it is skipped in cluster mode. */
export function singleNodeOnly(reason) {
  return CLUSTER ? `single-node only: ${reason}` : false;
}

/** A test's `skip` option for tests that need a cluster: false in cluster mode, else why it is skipped. */
export const clusterOnly = CLUSTER ? false : "needs a cluster: runs in the PARLEY_CLUSTER=3 pass of `npm run conformance`";

/**
 * Starts what a test file runs against: one fresh server, or with PARLEY_CLUSTER=N a fresh N-node cluster.
 * Either way the result has `url`/`wsUrl` (the first node), `nodes` (every node, each with `url`/`wsUrl`; a cluster
 * restarts a node in place, same address) and `stop()`; a cluster also has `cluster` (support/cluster.mjs) and
 * `secretKeyBase`, a single server `dataDir`.
 */
export async function startTarget() {
  if (!CLUSTER) {
    const server = await startServer();
    server.nodes = [server];
    return server;
  }
  const cluster = await startCluster({ nodes: CLUSTER });
  return {
    cluster,
    nodes: cluster.nodes,
    secretKeyBase: cluster.secretKeyBase,
    get url() {
      return cluster.nodes[0].url;
    },
    get wsUrl() {
      return cluster.nodes[0].wsUrl;
    },
    stop: () => cluster.stop(),
  };
}

/** Every node of `server` (a `startTarget` result, or a plain `startServer` one). */
export function nodesOf(server) {
  return server.nodes || [server];
}

/** Default time limit for anything a test waits on. Generous: a debug build on a busy machine is slow. */
export const TIMEOUT = 5_000;

/** Polls `predicate` until it returns a truthy value, which is returned; rejects after `ms` with `what`. */
export function waitFor(predicate, ms = TIMEOUT, what = "condition") {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = () => {
      let value;
      try {
        value = predicate();
      } catch (error) {
        reject(error);
        return;
      }
      if (value) {
        resolve(value);
      } else if (Date.now() - started > ms) {
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      } else {
        setTimeout(check, 5);
      }
    };
    check();
  });
}

/** Rejects after `ms` unless `promise` settles first. */
export function withTimeout(promise, ms = TIMEOUT, what = "promise") {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

let roomCounter = 0;

/** A fresh, valid room topic, unique within this process: `room:<prefix>-<n>-<random>`. */
export function uniqueTopic(prefix = "t") {
  roomCounter += 1;
  return `room:${prefix}-${roomCounter}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Creates a phoenix.js Socket on `wsUrl` with the `ws` transport and fast reconnect/rejoin backoffs, and records every
 * decoded inbound message in `socket.received` (as {join_ref, ref, topic, event, payload}).
 * `options` are passed through to the Socket constructor (e.g. `params`, `vsn`, `transport`).
 */
export function makeSocket(wsUrl, options = {}) {
  const socket = new Socket(`${wsUrl}/socket`, {
    transport: WebSocket,
    reconnectAfterMs: () => 50,
    rejoinAfterMs: () => 50,
    timeout: TIMEOUT,
    ...options,
  });
  socket.received = [];
  socket.onMessage((message) => socket.received.push(message));
  socket.opens = 0;
  socket.errors = 0;
  socket.closes = 0;
  socket.onOpen(() => (socket.opens += 1));
  socket.onError(() => (socket.errors += 1));
  socket.onClose(() => (socket.closes += 1));
  everySocket.add(socket);
  return socket;
}

// Every socket this file made. A socket nobody disconnected would keep reconnecting to a stopped server every 50 ms,
// and node would never exit: after the file's tests (before its own `after` hooks, which stop the server, as this
// one is registered first) any such socket is disconnected.
const everySocket = new Set();
after(async () => {
  const left = [...everySocket].filter((socket) => socket.isConnected() || socket.conn || socket.reconnectTimer.timer);
  everySocket.clear();
  await Promise.all(left.map((socket) => disconnectSocket(socket).catch(() => {})));
});

/** Connects `socket` and resolves once it is open. */
export async function connectSocket(socket, ms = TIMEOUT) {
  const opensBefore = socket.opens;
  socket.connect();
  await waitFor(() => socket.opens > opensBefore, ms, "the socket to open");
  return socket;
}

/** Disconnects `socket` and resolves once phoenix.js has torn the connection down. */
export function disconnectSocket(socket, ms = TIMEOUT) {
  return withTimeout(new Promise((resolve) => socket.disconnect(resolve)), ms, "socket.disconnect");
}

/**
 * Per-test client registry: every socket made through it is disconnected by `closeAll()`, which tests register with
 * `t.after(...)` so node exits even when an assertion fails half way.
 *
 * On a cluster the sockets are spread round-robin: the registry's first socket goes to node 0, the second to node 1,
 * and so on. Two socket options are the registry's own: `node` pins a socket to that node index (it still counts in
 * the rotation), `url` sends it to another ws:// base URL (e.g. a load balancer). `socket.node` is the node index
 * (undefined for `url`).
 */
export function clients(server) {
  const sockets = [];
  let made = 0;
  return {
    /** A new, not yet connected socket. */
    socket(options = {}) {
      const { node, url, ...socketOptions } = options;
      const nodes = nodesOf(server);
      const index = node ?? made % nodes.length;
      made += 1;
      if (!url && !nodes[index]) throw new Error(`no node ${index}: the server has ${nodes.length}`);
      const socket = makeSocket(url || nodes[index].wsUrl, socketOptions);
      socket.node = url ? undefined : index;
      sockets.push(socket);
      return socket;
    },
    /** A new socket, connected. */
    async connected(options = {}) {
      return connectSocket(this.socket(options));
    },
    /** A connected socket joined to `topic`; resolves {socket, channel, reply}. */
    async joined(topic, { socket: socketOptions = {}, params = {} } = {}) {
      const socket = await this.connected(socketOptions);
      const channel = socket.channel(topic, params);
      const reply = await joinOk(channel);
      return { socket, channel, reply };
    },
    async closeAll() {
      await Promise.all(sockets.splice(0).map((socket) => disconnectSocket(socket)));
    },
  };
}

/** Starts a client registry for test context `t` and registers its cleanup. */
export function clientsFor(t, server) {
  const registry = clients(server);
  t.after(() => registry.closeAll());
  return registry;
}

/**
 * Turns a phoenix Push into a promise of {status, response}, where status is "ok", "error" or "timeout".
 * Hooks stay registered on the push (phoenix keeps them across resends); only the first outcome settles the promise.
 */
export function settle(push) {
  return new Promise((resolve) => {
    push
      .receive("ok", (response) => resolve({ status: "ok", response }))
      .receive("error", (response) => resolve({ status: "error", response }))
      .receive("timeout", () => resolve({ status: "timeout", response: undefined }));
  });
}

/** Joins `channel`; resolves {status, response}. */
export function join(channel) {
  return settle(channel.join());
}

/** Joins `channel` and resolves the ok reply's response; throws on error or timeout. */
export async function joinOk(channel) {
  const { status, response } = await join(channel);
  if (status !== "ok") throw new Error(`join ${channel.topic} failed: ${status} ${JSON.stringify(response)}`);
  return response;
}

/** Pushes `event` on `channel`; resolves {status, response}. */
export function push(channel, event, payload = {}, timeout = TIMEOUT) {
  return settle(channel.push(event, payload, timeout));
}

/** Pushes and resolves the ok response; throws on error or timeout. */
export async function pushOk(channel, event, payload = {}, timeout = TIMEOUT) {
  const { status, response } = await push(channel, event, payload, timeout);
  if (status !== "ok") throw new Error(`${event} failed: ${status} ${JSON.stringify(response)}`);
  return response;
}

/** Records every payload of `event` on `channel` into the returned array. */
export function record(channel, event = "message:new") {
  const payloads = [];
  channel.on(event, (payload) => payloads.push(payload));
  return payloads;
}

/** Records every successful join reply of `channel` (the first join and every rejoin) with the join_ref it had. */
export function recordJoins(channel) {
  const joins = [];
  channel.joinPush.receive("ok", (response) => joins.push({ joinRef: channel.joinRef(), response }));
  return joins;
}

/**
 * A channel on `topic` that resumes like the chat app: its join params send the highest message id it has seen (from
 * join replies and broadcasts) as `last_seen_id`. Returns {channel, joins, broadcasts, lastSeen()}.
 */
export function resumingChannel(socket, topic) {
  let lastSeen = null;
  const see = (messages) => {
    for (const m of messages) lastSeen = Math.max(lastSeen ?? 0, m.id);
  };
  const channel = socket.channel(topic, () => (lastSeen === null ? {} : { last_seen_id: lastSeen }));
  const joins = recordJoins(channel);
  channel.joinPush.receive("ok", (reply) => see(reply.messages));
  const broadcasts = [];
  channel.on("message:new", (m) => {
    broadcasts.push(m);
    see([m]);
  });
  return { channel, joins, broadcasts, lastSeen: () => lastSeen };
}

/** Waits until `payloads` holds a message with id `id` and returns it. */
export function waitForMessage(payloads, id, ms = TIMEOUT) {
  return waitFor(() => payloads.find((m) => m.id === id), ms, `message:new with id ${id}`);
}

/** Most `message:new` pushes one socket may make per window (server default: 20 per 10 s). */
export const RATE_LIMIT = 20;

/**
 * Stores `bodies` in `topic` as user `user`, in order, using a fresh socket for every RATE_LIMIT messages so the
 * per-socket rate limit never interferes (on a cluster each batch goes to the next node). Resolves the ids. The
 * seeding sockets are disconnected afterwards.
 */
export async function seed(server, topic, bodies, user = "seeder") {
  const ids = [];
  const nodes = nodesOf(server);
  for (let start = 0; start < bodies.length; start += RATE_LIMIT) {
    const node = nodes[(start / RATE_LIMIT) % nodes.length];
    const socket = makeSocket(node.wsUrl, { params: { user } });
    try {
      await connectSocket(socket);
      const channel = socket.channel(topic, {});
      await joinOk(channel);
      for (const body of bodies.slice(start, start + RATE_LIMIT)) {
        ids.push((await pushOk(channel, "message:new", { body })).id);
      }
    } finally {
      await disconnectSocket(socket);
    }
  }
  return ids;
}

/** `n` distinct bodies `prefix 1` … `prefix n`. */
export function bodies(n, prefix = "msg") {
  return Array.from({ length: n }, (_, i) => `${prefix} ${i + 1}`);
}

/**
 * Opens a raw `ws` connection to `/socket/websocket` with `query` and resolves how the handshake ended:
 * {statusCode} for a refused upgrade (via 'unexpected-response'), or {open: true} for an accepted one.
 */
export function rawHandshake(wsUrl, query) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`${wsUrl}/socket/websocket?${query}`);
      ws.on("unexpected-response", (_request, response) => {
        let body = "";
        response.on("data", (chunk) => (body += chunk));
        response.on("end", () => {
          resolve({ statusCode: response.statusCode, body });
          ws.terminate();
        });
      });
      ws.on("open", () => {
        resolve({ open: true });
        ws.close();
      });
      ws.on("error", reject);
    }),
    TIMEOUT,
    `handshake ${query}`,
  );
}

/** Messages shaped like docs/protocol.md's Message (§7.2), with nothing else. */
export function assertMessageShape(assert, message) {
  assert.deepEqual(Object.keys(message).sort(), ["body", "id", "timestamp", "user"]);
  assert.ok(Number.isInteger(message.id) && message.id >= 1, `id ${message.id}`);
  assert.equal(typeof message.user, "string");
  assert.equal(typeof message.body, "string");
  assert.ok(Number.isInteger(message.timestamp), `timestamp ${message.timestamp}`);
}

// ---------------------------------------------------------------------------------------------------------------------
// Long poll (`/socket/longpoll`). phoenix.js's LongPoll transport sends its requests through `Ajax`, which in node (no
// XMLHttpRequest) uses the global `fetch` with an AbortController for the `longpollerTimeout`. phoenix.js 1.8.12
// never clears that abort timer, so every request keeps node's event loop alive for `longpollerTimeout` (20 s by
// default): a test file that uses LongPoll exits up to 20 s after its last request.

export { LongPoll };

/**
 * A phoenix.js Socket with the LongPoll transport on `server`'s node `opts.node` (default 0), or on `opts.url` (an
 * http:// or ws:// base URL such as a proxy's); not yet connected. `params` are the socket params, the other `opts`
 * go to the Socket constructor (through `makeSocket`, so it records what it receives and is cleaned up at the end of
 * the file). A `clients()` registry makes the same socket with `c.socket({transport: LongPoll, ...})`.
 */
export function longPollSocket(server, params = {}, opts = {}) {
  const { node = 0, url, ...options } = opts;
  const base = url || nodesOf(server)[node].wsUrl;
  const socket = makeSocket(base, { transport: LongPoll, params, ...options });
  socket.node = url ? undefined : node;
  return socket;
}

/** The long-poll endpoint of a node's (or proxy's) base URL, http:// or ws://. */
export function longPollUrl(base) {
  return `${base.replace(/^ws(s?):/, "http$1:")}/socket/longpoll`;
}

/**
 * One raw request to `/socket/longpoll` on `base`. `params` become the query string (default `{vsn: "2.0.0"}`, as
 * phoenix.js sends); a session `token` goes in the `X-Phoenix-Longpoll-Token` header (`tokenIn: "header"`, the
 * default) or as the `token` query param, after the params (`tokenIn: "query"`, as phoenix.js 1.8 sends it). A `body`
 * is sent as `application/x-ndjson` unless `headers` name another Content-Type. Resolves
 * {http, headers, text, json}: the HTTP status, the response headers, the body and the body parsed as JSON (undefined
 * when it is not JSON).
 */
export async function longPollRequest(
  base,
  { method = "GET", params = { vsn: "2.0.0" }, token, tokenIn = "header", body, headers = {}, ms = 15_000 } = {},
) {
  const query = new URLSearchParams(params);
  const sent = { Accept: "application/json", ...headers };
  if (token !== undefined && tokenIn === "query") query.append("token", token);
  if (token !== undefined && tokenIn === "header") sent["X-Phoenix-Longpoll-Token"] = token;
  if (body !== undefined && !Object.keys(sent).some((name) => name.toLowerCase() === "content-type")) {
    sent["Content-Type"] = "application/x-ndjson";
  }
  const qs = query.toString();
  const response = await fetch(`${longPollUrl(base)}${qs ? `?${qs}` : ""}`, {
    method,
    headers: sent,
    body,
    signal: AbortSignal.timeout(ms),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { http: response.status, headers: response.headers, text, json };
}

/**
 * A long-poll session driven by hand with `fetch`: `open()` creates it (GET without a token: 410 and a token),
 * `post(frames)` sends V2 frames as ndjson, `poll()` is one GET whose decoded frames are appended to `frames`,
 * `pollUntil(predicate)` polls until `predicate(frames)` holds. Every request carries the session token the way
 * `tokenIn` says ("header" or "query"). `lastPoll` is when the latest poll ended (Date.now()).
 */
export class RawLongPoll {
  constructor(base, params = {}, { tokenIn = "header" } = {}) {
    this.base = base;
    this.params = { vsn: "2.0.0", ...params };
    this.tokenIn = tokenIn;
    this.token = null;
    this.frames = [];
    this.polls = [];
    this.lastPoll = null;
    this.ref = 0;
  }

  /** Creates the session; resolves the raw answer. Throws unless it is the 410 that carries a token. */
  async open() {
    const answer = await longPollRequest(this.base, { params: this.params });
    if (answer.http !== 200 || answer.json?.status !== 410 || typeof answer.json.token !== "string") {
      throw new Error(`opening a long-poll session: HTTP ${answer.http} ${answer.text}`);
    }
    this.token = answer.json.token;
    return answer;
  }

  /** The next ref, as a string. */
  nextRef() {
    this.ref += 1;
    return String(this.ref);
  }

  /** POSTs `frames` (arrays, JSON-encoded one per line); resolves the raw answer. */
  post(frames, options = {}) {
    const body = frames.map((frame) => (typeof frame === "string" ? frame : JSON.stringify(frame))).join("\n");
    return longPollRequest(this.base, { method: "POST", token: this.token, tokenIn: this.tokenIn, body, ...options });
  }

  /** One GET; resolves the raw answer and records its frames (decoded) in `frames`. */
  async poll(options = {}) {
    const answer = await longPollRequest(this.base, { token: this.token, tokenIn: this.tokenIn, ...options });
    this.lastPoll = Date.now();
    this.polls.push(answer.json ?? answer.text);
    if (answer.json?.status === 200) {
      for (const message of answer.json.messages) this.frames.push(JSON.parse(message));
    }
    return answer;
  }

  /** Polls until `predicate(frames)` returns a truthy value, which is returned; throws after `ms`. */
  async pollUntil(predicate, ms = TIMEOUT, what = "frames") {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = predicate(this.frames);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${ms} ms polling for ${what}: ${JSON.stringify(this.polls)}`);
      }
      const answer = await this.poll();
      if (answer.json?.status !== 200 && answer.json?.status !== 204) {
        throw new Error(`poll answered HTTP ${answer.http} ${answer.text} while waiting for ${what}`);
      }
    }
  }

  /** Joins `topic` (join_ref = ref); resolves the join's phx_reply frame once polled. */
  async join(topic, payload = {}) {
    const ref = this.nextRef();
    const answer = await this.post([[ref, ref, topic, "phx_join", payload]]);
    if (answer.json?.status !== 200) throw new Error(`join POST answered HTTP ${answer.http} ${answer.text}`);
    const reply = (frames) => frames.find((f) => f[1] === ref && f[3] === "phx_reply");
    return this.pollUntil(reply, TIMEOUT, `join ${topic}`);
  }
}

/**
 * An unreachable server for network-switch tests: it accepts TCP connections and resets them at once. `address` is
 * `127.0.0.1:PORT`; `close()` stops it.
 */
export async function startBlackhole() {
  const server = createServer((conn) => conn.destroy());
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
