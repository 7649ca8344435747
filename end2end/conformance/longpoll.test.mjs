// Conformance: the long-poll transport (`/socket/longpoll`) with the unmodified phoenix.js client and its `LongPoll`
// transport (which, in node, talks through `fetch`), plus raw HTTP checks of docs/protocol.md §2.1. Covers
// connecting, joining, batched pushes, broadcasts and heartbeats; presence; `history:before`; recovery through
// `last_seen_id` after failed requests; session timing (204 after the 10 s poll window, the end of a session nobody
// polls for 15 s with its presence leaving, its leftovers delivered once, and phoenix.js rejoining after its stale
// poll gets 410); long-poll and WebSocket members in one room; the `longPollFallbackMs` fallback (upgrades refused
// by a proxy, a WebSocket that never opens, memorized in sessionStorage); in a cluster, a session whose requests land
// on every node (the relay) and a session whose node restarts; signed tokens (the `token` param next to phoenix.js
// 1.8's session token, the `authToken` header); and the raw answers: 410 + token, 403 + reason, the session token in
// the header or the query, 410 for a POST without a session, the POST body rules (100 frames, 413/400 refusals
// that dispatch nothing, CRLF, base64 binary lines, other content types, V1).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, test } from "node:test";

import { Presence } from "phoenix";
import WebSocket from "ws";

import { startHttpProxy } from "../support/http-proxy.mjs";
import { serverBinary } from "../support/server.mjs";
import {
  LongPoll,
  RawLongPoll,
  TIMEOUT,
  assertMessageShape,
  bodies,
  clientsFor,
  clusterOnly,
  connectSocket,
  disconnectSocket,
  joinOk,
  longPollRequest,
  longPollSocket,
  nodesOf,
  push,
  pushOk,
  record,
  recordJoins,
  resumingChannel,
  seed,
  startBlackhole,
  startTarget,
  uniqueTopic,
  waitFor,
  waitForMessage,
} from "./helpers.mjs";

let server;
let blackhole; // an unreachable server
let blackholeUrl;
before(async () => {
  server = await startTarget();
  blackhole = await startBlackhole();
  blackholeUrl = `http://${blackhole.address}`;
});
after(async () => {
  await blackhole?.close();
  await server?.stop({ removeData: true });
});

/** Index `i` wrapped to the target's node count (single-node runs use node 0 for every index). */
const idx = (i) => i % nodesOf(server).length;

/** Node `i` of the target, wrapped (see `idx`). */
const node = (i) => nodesOf(server)[idx(i)];

/** Socket options for a phoenix.js LongPoll socket as `user`. */
const longPoll = (user, options = {}) => ({ transport: LongPoll, params: { user }, ...options });

/** JSON copy of a callback argument (phoenix.js mutates its state objects later). */
const copy = (value) => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));

/**
 * Attaches a phoenix.js Presence to `channel` (before it joins) and records its callbacks with the time they ran.
 * `keys()` is the sorted list of present users.
 */
function watchPresence(channel) {
  const presence = new Presence(channel);
  const w = { presence, joins: [], leaves: [], syncs: 0 };
  presence.onJoin((key, _current, newPres) => w.joins.push({ key, at: Date.now(), metas: copy(newPres.metas) }));
  presence.onLeave((key, _current, leftPres) => w.leaves.push({ key, at: Date.now(), metas: copy(leftPres.metas) }));
  presence.onSync(() => (w.syncs += 1));
  w.keys = () => presence.list((key) => key).sort();
  w.metas = (key) => presence.list((k, { metas }) => (k === key ? copy(metas) : null)).find(Boolean) || [];
  return w;
}

/** A Storage-compatible in-memory store, for phoenix.js's `sessionStorage` option (node has no sessionStorage). */
class MemoryStorage {
  constructor() {
    this.items = new Map();
  }
  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  setItem(key, value) {
    this.items.set(key, String(value));
  }
  removeItem(key) {
    this.items.delete(key);
  }
}

test("a LongPoll socket opens on the 410 poll, joins, pushes (batched) and receives broadcasts and heartbeat replies", async (t) => {
  const c = clientsFor(t, server);
  // phoenix.js's LongPoll, recording the size of every POST batch it sends.
  const batches = [];
  class RecordingLongPoll extends LongPoll {
    batchSend(messages, offset = 0) {
      batches.push(messages.slice(offset, offset + 100).length);
      return super.batchSend(messages, offset);
    }
  }
  const socket = await c.connected(longPoll("alice", { transport: RecordingLongPoll }));
  assert.ok(socket.conn instanceof LongPoll, "the socket runs on phoenix.js's LongPoll");
  assert.match(socket.conn.pollEndpoint, /^http:\/\/[^/]+\/socket\/longpoll\?user=alice&vsn=2\.0\.0$/);
  assert.equal(typeof socket.conn.token, "string", "the 410 poll handed out a session token");
  assert.ok(socket.conn.token.length > 0);

  const topic = uniqueTopic("lp-basic");
  const channel = socket.channel(topic, {});
  const seen = record(channel);
  const reply = await joinOk(channel);
  assert.deepEqual(reply, { user: "alice", messages: [], recovered: true });
  // The reply frame, then presence_state for the same join.
  const presenceState = () => socket.received.some((m) => m.topic === topic && m.event === "presence_state");
  await waitFor(presenceState, TIMEOUT, "presence_state");
  const frames = socket.received.filter((m) => m.topic === topic);
  assert.equal(frames[0].event, "phx_reply");
  assert.equal(frames[0].join_ref, channel.joinRef());
  assert.equal(frames[0].ref, channel.joinRef());
  assert.equal(frames[1].event, "presence_state");
  assert.equal(frames[1].join_ref, channel.joinRef());

  const { id } = await pushOk(channel, "message:new", { body: "  over long poll  " });
  const message = await waitForMessage(seen, id);
  assertMessageShape(assert, message);
  assert.deepEqual({ user: message.user, body: message.body }, { user: "alice", body: "over long poll" });

  // A second long-poll member gets the history in its join reply and the broadcasts from then on.
  const bob = await c.connected(longPoll("bob"));
  const bobChannel = bob.channel(topic, {});
  const bobSeen = record(bobChannel);
  assert.deepEqual((await joinOk(bobChannel)).messages, [message]);
  const { id: answer } = await pushOk(bobChannel, "message:new", { body: "hi alice" });
  assert.equal((await waitForMessage(seen, answer)).user, "bob");
  assert.equal((await waitForMessage(bobSeen, answer)).body, "hi alice");

  // Pushes made in one tick travel in one ndjson POST (phoenix.js batches them); each gets its own reply, in order,
  // and each broadcast arrives once, in id order.
  const batchesBefore = batches.length;
  const five = ["one", "two", "three", "four", "five"];
  const burst = await Promise.all(five.map((body) => push(channel, "message:new", { body })));
  assert.deepEqual(batches.slice(batchesBefore), [5], "the five pushes went out in one POST of five lines");
  assert.deepEqual(burst.map((r) => r.status), ["ok", "ok", "ok", "ok", "ok"]);
  const ids = burst.map((r) => r.response.id);
  assert.deepEqual(ids, [answer + 1, answer + 2, answer + 3, answer + 4, answer + 5]);
  for (const member of [seen, bobSeen]) await waitForMessage(member, ids.at(-1));
  assert.deepEqual(bobSeen.map((m) => m.id), [answer, ...ids]);
  assert.deepEqual(seen.map((m) => m.id), [id, answer, ...ids]);

  // phoenix.js sends no heartbeats over long poll, but an explicit one is answered like on a WebSocket.
  assert.equal(socket.conn.skipHeartbeat, true);
  const rtt = await new Promise((resolve, reject) => {
    if (!socket.ping(resolve)) reject(new Error("ping refused: socket not connected"));
  });
  assert.ok(rtt >= 0 && rtt < TIMEOUT, `rtt ${rtt}`);
  const heartbeat = socket.received.findLast((m) => m.topic === "phoenix");
  assert.deepEqual(
    { join_ref: heartbeat.join_ref, event: heartbeat.event, payload: heartbeat.payload },
    { join_ref: null, event: "phx_reply", payload: { status: "ok", response: {} } },
  );
});

test("presence over long poll: a second LongPoll member's join, typing and leave reach the first", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("lp-presence");
  const alice = await c.connected(longPoll("alice"));
  const aliceChannel = alice.channel(topic, {});
  const aw = watchPresence(aliceChannel);
  await joinOk(aliceChannel);
  await waitFor(() => aw.syncs > 0 && aw.keys().includes("alice"), TIMEOUT, "alice's first sync");
  assert.deepEqual(aw.keys(), ["alice"]);
  const [aliceMeta] = aw.metas("alice");
  assert.deepEqual(Object.keys(aliceMeta).sort(), ["online_at", "phx_ref", "typing"]);
  assert.equal(aliceMeta.typing, false);

  const bob = await c.connected(longPoll("bob"));
  const bobChannel = bob.channel(topic, {});
  const bw = watchPresence(bobChannel);
  await joinOk(bobChannel);
  const bobJoin = await waitFor(() => aw.joins.find((j) => j.key === "bob"), TIMEOUT, "alice sees bob join");
  assert.equal(bobJoin.metas.length, 1);
  await waitFor(() => bw.keys().join() === "alice,bob", TIMEOUT, "bob sees alice and bob");
  assert.deepEqual(bw.metas("alice"), aw.metas("alice"), "both lists agree on alice");
  assert.deepEqual(bw.metas("bob"), aw.metas("bob"), "both lists agree on bob");

  assert.deepEqual(await pushOk(bobChannel, "typing", { typing: true }), {});
  await waitFor(() => aw.metas("bob")[0]?.typing === true, TIMEOUT, "alice sees bob typing");
  assert.equal(aw.metas("bob").length, 1);
  assert.equal(aw.metas("bob")[0].phx_ref_prev, bobJoin.metas[0].phx_ref);

  // A leave over long poll: the reply, then the presence leave on the other member.
  const leave = await new Promise((resolve) => {
    bobChannel.leave().receive("ok", () => resolve("ok")).receive("timeout", () => resolve("timeout"));
  });
  assert.equal(leave, "ok");
  const left = await waitFor(() => aw.leaves.find((l) => l.key === "bob"), TIMEOUT, "alice sees bob leave");
  assert.equal(left.metas.length, 1);
  await waitFor(() => aw.keys().join() === "alice", TIMEOUT, "only alice left in alice's list");
  assert.equal(bob.isConnected(), true, "leaving a channel keeps the long-poll session");
});

test("history over long poll: the join reply, last_seen_id and history:before pages", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("lp-history");
  const ids = await seed(server, topic, bodies(30));
  const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  assert.deepEqual(ids, range(1, 30));

  const socket = await c.connected(longPoll("reader"));
  const channel = socket.channel(topic, {});
  const reply = await joinOk(channel);
  assert.deepEqual(reply.messages.map((m) => m.id), range(1, 30));
  assert.deepEqual(reply.messages.map((m) => m.body), bodies(30));

  const pages = [];
  let beforeId = 31;
  for (;;) {
    const { messages } = await pushOk(channel, "history:before", { before_id: beforeId, limit: 12 });
    if (messages.length === 0) break;
    messages.forEach((m) => assertMessageShape(assert, m));
    pages.push(messages.map((m) => m.id));
    beforeId = messages[0].id;
  }
  assert.deepEqual(pages, [range(19, 30), range(7, 18), range(1, 6)]);
  const all = await pushOk(channel, "history:before", { before_id: 31, limit: 100 });
  assert.deepEqual(all, { messages: reply.messages });
  assert.deepEqual(await push(channel, "history:before", { limit: 3 }), {
    status: "error",
    response: { reason: "invalid payload" },
  });

  const gap = socket.channel(uniqueTopic("lp-history-none"), {});
  assert.deepEqual((await joinOk(gap)).messages, []);
  const resumed = socket.channel(topic, { last_seen_id: 27 });
  channel.leave();
  const resumedReply = await joinOk(resumed);
  assert.equal(resumedReply.recovered, true);
  assert.deepEqual(resumedReply.messages.map((m) => m.id), [28, 29, 30]);
});

/**
 * A LongPoll transport with a network switch: while `gate.offline` is set, new connections go to the blackhole (every
 * request fails). Records every frame the client sends (`gate.sent`, decoded) and counts connection attempts made
 * while offline (`gate.attempts`).
 */
function gatedLongPoll() {
  const gate = { offline: false, attempts: 0, sent: [] };
  class GatedLongPoll extends LongPoll {
    constructor(endPoint, protocols) {
      const offline = gate.offline;
      super(offline ? endPoint.replace(/^\w+:\/\/[^/]+/, blackholeUrl) : endPoint, protocols);
      if (offline) gate.attempts += 1;
    }
    send(body) {
      gate.sent.push(JSON.parse(body));
      super.send(body);
    }
  }
  return { gate, transport: GatedLongPoll };
}

/**
 * A LongPoll transport whose polling can be frozen: while `gate.paused` is set, a poll that falls due is not sent;
 * `gate.due` is when the first one fell due, and `gate.resume()` unfreezes and sends it.
 */
function pausableLongPoll() {
  const gate = { paused: false, due: null, resume: () => {} };
  class PausableLongPoll extends LongPoll {
    poll() {
      if (!gate.paused) return super.poll();
      if (gate.due !== null) return undefined;
      gate.due = Date.now();
      gate.resume = () => {
        gate.paused = false;
        super.poll();
      };
      return undefined;
    }
  }
  return { gate, transport: PausableLongPoll };
}

/** Makes `socket`'s long-poll requests fail as if they had timed out: phoenix.js closes and retries. */
function dropLongPoll(socket) {
  const requests = [...socket.conn.reqs];
  assert.ok(requests.length > 0, "a poll is in flight");
  for (const request of requests) request.abort();
}

test("after its requests fail phoenix.js reconnects over long poll and a rejoin with last_seen_id recovers exactly the missed messages", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("lp-recover");
  const sender = await c.joined(topic, { socket: { params: { user: "sender" } } }); // a WebSocket member

  const { gate, transport } = gatedLongPoll();
  const socket = await c.connected({ transport, params: { user: "dropper" } });
  const { channel, joins, broadcasts, lastSeen } = resumingChannel(socket, topic);
  assert.deepEqual((await joinOk(channel)).messages, []);
  for (const body of ["seen 1", "seen 2"]) {
    const { id } = await pushOk(sender.channel, "message:new", { body });
    await waitForMessage(broadcasts, id);
  }
  assert.equal(lastSeen(), 2);
  const firstToken = socket.conn.token;

  // The network goes away: the poll in flight fails, and so does every reconnect attempt while offline.
  gate.offline = true;
  dropLongPoll(socket);
  await waitFor(() => channel.state === "errored" && gate.attempts >= 1, TIMEOUT, "the dropper to be offline");
  const pending = push(channel, "message:new", { body: "written offline" });
  const missed = [];
  for (const body of ["missed 1", "missed 2", "missed 3"]) {
    missed.push({ id: (await pushOk(sender.channel, "message:new", { body })).id, body, user: "sender" });
  }
  assert.deepEqual(missed.map((m) => m.id), [3, 4, 5]);
  assert.equal(socket.isConnected(), false, "still offline after the sends");

  // Back online: a new session, a rejoin carrying last_seen_id 2, exactly the three missed messages in its reply, and
  // the push written offline sent after the rejoin.
  gate.offline = false;
  await waitFor(() => joins.length === 2, TIMEOUT, "rejoin");
  assert.notEqual(socket.conn.token, firstToken, "a new long-poll session");
  const rejoinFrame = gate.sent.findLast((f) => f[3] === "phx_join");
  assert.deepEqual(rejoinFrame, [joins[1].joinRef, joins[1].joinRef, topic, "phx_join", { last_seen_id: 2 }]);
  assert.equal(joins[1].response.recovered, true);
  assert.deepEqual(joins[1].response.messages.map(({ id, body, user }) => ({ id, body, user })), missed);
  assert.deepEqual(await pending, { status: "ok", response: { id: 6 } });
  await waitForMessage(broadcasts, 6);
  const pushFrame = gate.sent.find((f) => f[3] === "message:new");
  assert.equal(pushFrame[0], joins[1].joinRef, "the buffered push went out with the rejoin's join_ref");

  // No duplicates afterwards.
  const { id: next } = await pushOk(sender.channel, "message:new", { body: "after" });
  await waitForMessage(broadcasts, next);
  assert.deepEqual(broadcasts.map((m) => m.id), [1, 2, 6, 7]);
  assert.equal(lastSeen(), 7);
});

test("a long-poll member and a WebSocket member of one room exchange messages and presence both ways", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("lp-mixed");
  const lp = await c.connected(longPoll("poller"));
  const ws = await c.connected({ params: { user: "socketeer" } });
  assert.ok(lp.conn instanceof LongPoll);
  assert.ok(ws.conn instanceof WebSocket);
  const lpChannel = lp.channel(topic, {});
  const wsChannel = ws.channel(topic, {});
  const lpSeen = record(lpChannel);
  const wsSeen = record(wsChannel);
  const lpw = watchPresence(lpChannel);
  const wsw = watchPresence(wsChannel);
  await joinOk(lpChannel);
  await joinOk(wsChannel);
  await waitFor(() => lpw.keys().join() === "poller,socketeer", TIMEOUT, "the poller sees both");
  await waitFor(() => wsw.keys().join() === "poller,socketeer", TIMEOUT, "the socketeer sees both");

  for (let round = 0; round < 3; round += 1) {
    const { id: a } = await pushOk(lpChannel, "message:new", { body: `from long poll ${round}` });
    const { id: b } = await pushOk(wsChannel, "message:new", { body: `from websocket ${round}` });
    assert.equal((await waitForMessage(wsSeen, a)).user, "poller");
    assert.equal((await waitForMessage(lpSeen, b)).user, "socketeer");
  }
  assert.deepEqual(lpSeen.map((m) => m.id), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(wsSeen, lpSeen, "both members saw the same messages in the same order");

  await pushOk(wsChannel, "typing", { typing: true });
  await waitFor(() => lpw.metas("socketeer")[0]?.typing === true, TIMEOUT, "the poller sees the socketeer typing");
  await pushOk(lpChannel, "typing", { typing: true });
  await waitFor(() => wsw.metas("poller")[0]?.typing === true, TIMEOUT, "the socketeer sees the poller typing");
});

test("session timing: an idle poll answers 204 after the 10 s window; a session nobody polls for 15 s ends, its presence leaves, and phoenix.js rejoins after its stale poll gets 410", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("lp-expiry");
  // The observer: a WebSocket member.
  const alice = await c.connected({ params: { user: "alice" }, node: 0 });
  const aliceChannel = alice.channel(topic, {});
  const aw = watchPresence(aliceChannel);
  await joinOk(aliceChannel);

  // idle: a raw session in no room, polling once. Nothing arrives, so the poll ends with 204 after the window.
  const idle = new RawLongPoll(node(1).url, { user: "idle" });
  await idle.open();
  const idleStarted = Date.now();
  const idlePoll = idle.poll();

  // bob: phoenix.js whose polling can be frozen, as a browser freezes a background tab's timers.
  const { gate, transport } = pausableLongPoll();
  const bob = await c.connected(longPoll("bob", { node: idx(2), transport }));
  const bobChannel = bob.channel(topic, {});
  const bobJoins = recordJoins(bobChannel);
  const bobSeen = record(bobChannel);
  const bobErrors = [];
  const bobCloses = [];
  bob.onError((error) => bobErrors.push(error));
  bob.onClose((event) => bobCloses.push(event?.code));
  await joinOk(bobChannel);

  // dave: phoenix.js that will disconnect without leaving (a closed tab: its poll is just aborted).
  const dave = await c.connected(longPoll("dave", { node: idx(1) }));
  const daveChannel = dave.channel(topic, {});
  const daveSeen = record(daveChannel);
  await joinOk(daveChannel);

  // carol: a raw session that joins and then never polls again.
  const carol = new RawLongPoll(node(0).url, { user: "carol" });
  await carol.open();
  const carolReply = await carol.join(topic);
  assert.equal(carolReply[4].status, "ok");

  await waitFor(() => aw.keys().join() === "alice,bob,carol,dave", TIMEOUT, "everyone in alice's list");
  await carol.pollUntil((frames) => frames.some((f) => f[3] === "presence_state"), TIMEOUT, "carol's presence_state");
  const carolGone = carol.lastPoll;

  // Freeze bob, and send a message so bob's and dave's polls in flight end now: bob's next poll waits (his last poll
  // ended when it was due), dave disconnects right after his.
  gate.paused = true;
  const { id } = await pushOk(aliceChannel, "message:new", { body: "last words" });
  await waitForMessage(daveSeen, id);
  await disconnectSocket(dave);
  const daveGone = Date.now();
  await waitFor(() => gate.due, TIMEOUT, "bob's next poll to be due");
  const bobGone = gate.due;
  const bobToken = bob.conn.token;

  // The idle poll: 204, with a session token that keeps working.
  const idleAnswer = await idlePoll;
  const idleElapsed = Date.now() - idleStarted;
  assert.equal(idleAnswer.http, 200);
  const idleShape = { ...idleAnswer.json, token: typeof idleAnswer.json.token };
  assert.deepEqual(idleShape, { status: 204, token: "string", messages: [] });
  assert.ok(idleElapsed >= 9_500 && idleElapsed <= 12_000, `the idle poll answered after ${idleElapsed} ms`);
  idle.token = idleAnswer.json.token;
  assert.deepEqual((await idle.post([[null, "hb", "phoenix", "heartbeat", {}]])).json, { status: 200 });
  await idle.pollUntil((frames) => frames.some((f) => f[1] === "hb"), TIMEOUT, "the heartbeat reply");

  // The three sessions end about 15 s after their last poll; their presence leaves like a closed WebSocket's.
  const leaveOf = (key) =>
    waitFor(() => aw.leaves.find((l) => l.key === key), 30_000, `${key}'s presence to leave`);
  const [carolLeave, daveLeave, bobLeave] = await Promise.all(["carol", "dave", "bob"].map(leaveOf));
  const timings = {
    carol: carolLeave.at - carolGone,
    dave: daveLeave.at - daveGone,
    bob: bobLeave.at - bobGone,
  };
  t.diagnostic(`presence left after (ms): ${JSON.stringify(timings)}`);
  for (const [who, ms] of Object.entries(timings)) {
    assert.ok(ms >= 14_000 && ms <= 18_000, `${who}'s session ended ${ms} ms after its last poll (expected 15 s)`);
  }
  assert.deepEqual(aw.keys(), ["alice"]);

  // carol's session is over: a POST answers 410. What it buffered before it ended (the "last words" broadcast) is
  // delivered to the next poll; the poll after that opens a new session (410 with another token).
  const stalePost = await carol.post([[null, "1", "phoenix", "heartbeat", {}]]);
  assert.deepEqual([stalePost.http, stalePost.json], [200, { status: 410 }]);
  const leftovers = await carol.poll();
  assert.equal(leftovers.json.status, 200, `the buffered frames: ${leftovers.text}`);
  assert.ok(
    carol.frames.some((f) => f[3] === "message:new" && f[4].id === id),
    `the broadcast buffered before the end is delivered: ${leftovers.text}`,
  );
  const staleToken = carol.token;
  const reopened = await carol.poll();
  assert.equal(reopened.http, 200);
  assert.equal(reopened.json.status, 410, `then a new session: ${reopened.text}`);
  assert.equal(typeof reopened.json.token, "string", `with a token: ${reopened.text}`);
  assert.notEqual(reopened.json.token, staleToken);

  // bob thaws: his next poll carries the stale token, gets 410, and phoenix.js reconnects and rejoins.
  gate.resume();
  await waitFor(() => bobJoins.length === 2, TIMEOUT, "bob's rejoin");
  assert.ok(bobErrors.includes(410), `phoenix.js saw the 410 of a lost session: errors ${JSON.stringify(bobErrors)}`);
  assert.ok(bobCloses.includes(3410), `closed with 3410 session_gone: ${JSON.stringify(bobCloses)}`);
  assert.notEqual(bob.conn.token, bobToken, "a new session");
  await waitFor(() => aw.keys().join() === "alice,bob", TIMEOUT, "bob back in alice's list");
  const { id: back } = await pushOk(bobChannel, "message:new", { body: "back again" });
  await waitForMessage(bobSeen, back);
});

test("longPollFallbackMs: when a proxy refuses WebSocket upgrades phoenix.js falls back to LongPoll, joins, and memorizes it", async (t) => {
  const proxy = await startHttpProxy([node(0).addr]);
  t.after(() => proxy.close());
  const attempts = [];
  class CountingWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      attempts.push(url);
    }
  }
  const store = new MemoryStorage();
  const c = clientsFor(t, server);
  const options = { transport: CountingWebSocket, longPollFallbackMs: 500, sessionStorage: store };
  const socket = c.socket({ ...options, url: proxy.wsUrl, params: { user: "walled" } });
  socket.connect();
  const topic = uniqueTopic("lp-fallback");
  const channel = socket.channel(topic, {});
  const seen = record(channel);
  assert.equal((await joinOk(channel)).user, "walled");
  assert.ok(attempts.length >= 1 && proxy.upgrades >= 1, "the WebSocket was tried first and refused");
  assert.equal(socket.transport, LongPoll);
  assert.ok(socket.conn instanceof LongPoll);
  assert.equal(store.getItem("phx:fallback:LongPoll"), "true", "the fallback is memorized");
  const { id } = await pushOk(channel, "message:new", { body: "through the wall" });
  await waitForMessage(seen, id);

  // A later socket with the same storage goes straight to LongPoll without trying the WebSocket.
  const tried = attempts.length;
  const upgrades = proxy.upgrades;
  const again = await connectSocket(c.socket({ ...options, url: proxy.wsUrl, params: { user: "walled" } }));
  assert.ok(again.conn instanceof LongPoll);
  assert.equal(attempts.length, tried, "no WebSocket attempt");
  assert.equal(proxy.upgrades, upgrades);
  const againChannel = again.channel(topic, {});
  assert.deepEqual((await joinOk(againChannel)).messages.map((m) => m.id), [id]);
});

test("longPollFallbackMs: a WebSocket that never opens falls back after the delay; without sessionStorage nothing breaks", async (t) => {
  assert.equal(globalThis.sessionStorage, undefined, "node has no sessionStorage");
  const made = [];
  class SilentWebSocket {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = 0;
      made.push(this);
    }
    send() {
      throw new Error("never open");
    }
    close() {
      this.readyState = 3;
    }
  }
  const c = clientsFor(t, server);
  const socket = c.socket({ transport: SilentWebSocket, longPollFallbackMs: 500, params: { user: "patient" } });
  const started = Date.now();
  socket.connect();
  await waitFor(() => socket.opens === 1, TIMEOUT, "the fallback to open");
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 450, `fell back after ${elapsed} ms, not before the 500 ms delay`);
  assert.equal(made.length, 1);
  assert.match(made[0].url, /\/socket\/websocket\?user=patient&vsn=2\.0\.0$/);
  assert.equal(made[0].readyState, 3, "phoenix.js closed the silent WebSocket");
  assert.ok(socket.conn instanceof LongPoll);
  const channel = socket.channel(uniqueTopic("lp-fallback-timer"), {});
  const seen = record(channel);
  await joinOk(channel);
  const { id } = await pushOk(channel, "message:new", { body: "patience" });
  await waitForMessage(seen, id);
});

test("a session whose requests land on different nodes works (relay)", { skip: clusterOnly }, async (t) => {
  const nodes = nodesOf(server);
  // Every request through this proxy goes to the next node: the session's polls and posts rotate over the cluster.
  const proxy = await startHttpProxy(() => server.nodes.map((n) => n.addr));
  t.after(() => proxy.close());
  const c = clientsFor(t, server);
  const topic = uniqueTopic("lp-relay");
  const ws = await c.connected({ params: { user: "anchor" }, node: 0 });
  const wsChannel = ws.channel(topic, {});
  const wsSeen = record(wsChannel);
  const ww = watchPresence(wsChannel);
  await joinOk(wsChannel);

  const lp = await c.connected(longPoll("roamer", { url: proxy.wsUrl }));
  const lpChannel = lp.channel(topic, {});
  const lpSeen = record(lpChannel);
  const lw = watchPresence(lpChannel);
  await joinOk(lpChannel);
  await waitFor(() => ww.keys().join() === "anchor,roamer", TIMEOUT, "the anchor sees the roamer");
  await waitFor(() => lw.keys().join() === "anchor,roamer", TIMEOUT, "the roamer sees the anchor");
  for (let i = 0; i < nodes.length + 1; i += 1) {
    const { id: a } = await pushOk(lpChannel, "message:new", { body: `roaming ${i}` });
    const { id: b } = await pushOk(wsChannel, "message:new", { body: `anchored ${i}` });
    await waitForMessage(wsSeen, a);
    await waitForMessage(lpSeen, b);
  }
  assert.deepEqual(lpSeen, wsSeen);
  // The first GET opened the session on its node; polls and posts then reached every node, most of them relayed.
  const owner = proxy.routes[0].addr;
  const routed = (method) => proxy.routes.filter((r) => r.method === method).map((r) => r.addr);
  const routes = JSON.stringify(proxy.routes.map(({ method, addr }) => `${method} ${addr}`));
  for (const method of ["GET", "POST"]) {
    assert.equal(new Set(routed(method)).size, nodes.length, `${method}s went to every node: ${routes}`);
    assert.ok(routed(method).filter((addr) => addr !== owner).length >= 2, `relayed ${method}s: ${routes}`);
  }
  lpChannel.leave();
  await waitFor(() => ww.keys().join() === "anchor", TIMEOUT, "the roamer's leave reaches the anchor");

  // Raw: a session opened on node 0, posted to on node 1, polled on node 2.
  const raw = new RawLongPoll(nodes[0].url, { user: "hopper" });
  await raw.open();
  raw.base = nodes[1].url;
  assert.deepEqual((await raw.post([["1", "1", topic, "phx_join", {}]])).json, { status: 200 });
  raw.base = nodes[2 % nodes.length].url;
  const reply = await raw.pollUntil((frames) => frames.find((f) => f[1] === "1"), TIMEOUT, "the join reply");
  assert.equal(reply[4].status, "ok");
  assert.equal(reply[4].response.user, "hopper");
  await waitFor(() => ww.keys().join() === "anchor,hopper", TIMEOUT, "the anchor sees the hopper");
});

test("when the node holding a session restarts, the session ends with it; the next poll gets 410 and phoenix.js rejoins through another node, recovering what it missed", { skip: clusterOnly }, async (t) => {
  const proxy = await startHttpProxy(() => server.nodes.map((n) => n.addr));
  t.after(() => proxy.close());
  const c = clientsFor(t, server);
  const topic = uniqueTopic("lp-owner");
  const sender = await c.connected({ params: { user: "sender" }, node: 1 });
  const senderChannel = sender.channel(topic, {});
  const sw = watchPresence(senderChannel);
  await joinOk(senderChannel);

  const { gate, transport } = pausableLongPoll();
  const socket = await c.connected(longPoll("tenant", { url: proxy.wsUrl, transport }));
  assert.equal(proxy.routes[0].addr, server.nodes[0].addr, "node 0 holds the session (the proxy's first GET)");
  const errors = [];
  socket.onError((error) => errors.push(error));
  const { channel, joins, broadcasts, lastSeen } = resumingChannel(socket, topic);
  await joinOk(channel);
  await waitFor(() => sw.keys().join() === "sender,tenant", TIMEOUT, "the sender to see the tenant");
  const { id: first } = await pushOk(senderChannel, "message:new", { body: "before" });
  await waitForMessage(broadcasts, first);

  // Freeze the tenant between two polls (the message ends the poll in flight, unless a presence frame did so first
  // and the message stays buffered in the session), then restart node 0: the session ends with it and its presence
  // leaves.
  gate.paused = true;
  const { id: nudge } = await pushOk(senderChannel, "message:new", { body: "nudge" });
  await waitFor(() => gate.due, TIMEOUT, "the tenant's next poll to be due");
  const oldId = server.nodes[0].id;
  await server.cluster.restart(0);
  assert.notEqual(server.nodes[0].id, oldId, "a restarted node has a new node id");
  await waitFor(() => !sw.keys().includes("tenant"), TIMEOUT, "the tenant's presence to leave with its node");
  const missed = [];
  for (const body of ["missed 1", "missed 2"]) missed.push((await pushOk(senderChannel, "message:new", { body })).id);

  // The tenant thaws: its poll names a session on a node that is gone, so it gets 410; phoenix.js reconnects (a new
  // session), rejoins with last_seen_id and gets exactly what it had not seen.
  const seen = lastSeen();
  assert.ok(seen === first || seen === nudge, `last seen ${seen}`);
  gate.resume();
  await waitFor(() => joins.length === 2, 10_000, "the tenant's rejoin");
  assert.ok(errors.includes(410), `phoenix.js saw the 410 of a lost session: errors ${JSON.stringify(errors)}`);
  assert.equal(joins[1].response.recovered, true);
  const sent = [first, nudge, ...missed];
  assert.deepEqual(joins[1].response.messages.map((m) => m.id), sent.filter((id) => id > seen));
  await waitFor(() => sw.keys().join() === "sender,tenant", TIMEOUT, "the tenant back in the sender's list");
  const { id: back } = await pushOk(channel, "message:new", { body: "back" });
  await waitForMessage(broadcasts, back);
  assert.deepEqual(broadcasts.map((m) => m.id), [...sent.filter((id) => id <= seen), back], "no duplicates");
});

/** A token for `user`, signed with the target's secret (its data directory's, or the cluster's shared one). */
function tokenFor(user) {
  const secret = server.secretKeyBase ? ["--secret-key-base", server.secretKeyBase] : ["--data-dir", server.dataDir];
  return execFileSync(serverBinary(), ["token", "--user", user, ...secret]).toString().trim();
}

test("signed tokens over long poll: a token param next to phoenix.js 1.8's session token param, and the authToken option", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("lp-auth");
  // phoenix.js 1.8 appends its session token as a second `token` query param after the user's own.
  const ada = await c.connected(longPoll("mallory", { params: { token: tokenFor("Ada"), user: "mallory" } }));
  const channel = ada.channel(topic, {});
  const seen = record(channel);
  assert.equal((await joinOk(channel)).user, "Ada");
  for (const body of ["one", "two", "three"]) {
    const { id } = await pushOk(channel, "message:new", { body });
    assert.equal((await waitForMessage(seen, id)).user, "Ada");
  }
  assert.match(ada.conn.endpointURL(), /\?token=[^&]+&user=mallory&vsn=2\.0\.0&token=[^&]+$/, "both tokens in the URL");
  assert.equal(ada.opens, 1, "one session all along");
  assert.equal(ada.errors, 0);

  // The authToken option travels as the X-Phoenix-AuthToken header.
  const graceToken = tokenFor("Grace");
  const grace = longPollSocket(server, {}, { authToken: graceToken, node: idx(1) });
  t.after(() => disconnectSocket(grace));
  await connectSocket(grace);
  assert.equal(grace.conn.authToken, graceToken, "LongPoll took the token out of the subprotocol list");
  assert.equal((await joinOk(grace.channel(topic, {}))).user, "Grace");
});

test("raw: a GET without a session gets 410 and a fresh token; refused connects get 403 and the reason", async () => {
  const base = node(0).url;
  const fresh = await longPollRequest(base, { params: { vsn: "2.0.0", user: "rawley" } });
  assert.equal(fresh.http, 200);
  assert.equal(fresh.headers.get("content-type"), "application/json");
  assert.equal(fresh.headers.get("cache-control"), "no-store");
  assert.equal(fresh.json.status, 410);
  assert.equal(typeof fresh.json.token, "string");

  // A session token the server never signed is no session: the header's "garbage" opens a new one.
  const garbage = await longPollRequest(base, { params: { vsn: "2.0.0", user: "rawley" }, token: "garbage" });
  assert.equal(garbage.json.status, 410);
  assert.equal(typeof garbage.json.token, "string");
  assert.notEqual(garbage.json.token, "garbage");
  assert.notEqual(garbage.json.token, fresh.json.token);

  const refused = async (what, params, headers, reason) => {
    const answer = await longPollRequest(base, { params, headers });
    assert.equal(answer.http, 200, `${what}: HTTP ${answer.http}`);
    assert.deepEqual(answer.json, { status: 403, reason }, what);
  };
  for (const vsn of ["3.0.0", "2.1.0", "abc", ""]) {
    await refused(`vsn ${vsn}`, { vsn, user: "rawley" }, {}, "unsupported protocol version");
  }
  for (const user of ["", "   ", "a<b", "x".repeat(33)]) {
    await refused(`user ${JSON.stringify(user)}`, { vsn: "2.0.0", user }, {}, "invalid user name");
  }
  // A `token` param that is not a session token is the user's token (§3.4), and this one is invalid; so is a bad
  // X-Phoenix-AuthToken header.
  await refused("token=garbage", { vsn: "2.0.0", token: "garbage" }, {}, "invalid token");
  await refused("X-Phoenix-AuthToken", { vsn: "2.0.0" }, { "X-Phoenix-AuthToken": "garbage" }, "invalid token");
  for (const origin of ["https://evil.example", "null"]) {
    await refused(`Origin ${origin}`, { vsn: "2.0.0", user: "rawley" }, { Origin: origin }, "origin not allowed");
  }

  // The server's own origin is allowed, and gets the CORS headers; so does its preflight.
  const own = await longPollRequest(base, { params: { vsn: "2.0.0", user: "rawley" }, headers: { Origin: base } });
  assert.equal(own.json.status, 410);
  assert.equal(own.headers.get("access-control-allow-origin"), base);
  assert.equal(own.headers.get("access-control-allow-credentials"), "true");
  const preflight = await fetch(`${base}/socket/longpoll`, {
    method: "OPTIONS",
    headers: {
      Origin: base,
      "Access-Control-Request-Method": "POST",
      "Access-Control-Request-Headers": "content-type,x-phoenix-longpoll-token",
    },
  });
  assert.equal(preflight.status, 200);
  assert.equal(preflight.headers.get("access-control-allow-origin"), base);
  assert.match(preflight.headers.get("access-control-allow-methods"), /POST/);
  assert.match(preflight.headers.get("access-control-allow-headers"), /x-phoenix-longpoll-token/i);
  const foreign = await fetch(`${base}/socket/longpoll`, {
    method: "OPTIONS",
    headers: { Origin: "https://evil.example" },
  });
  assert.equal(foreign.headers.get("access-control-allow-origin"), null);

  // The whole answer that opens a session, as Phoenix sends it and docs/protocol.md §2.1 documents it.
  assert.deepEqual(fresh.json, { status: 410, token: fresh.json.token, messages: [] }, `the answer: ${fresh.text}`);
});

test("raw: the session token works in the X-Phoenix-Longpoll-Token header and in the token query param; POSTs without a session get 410", async () => {
  const topic = uniqueTopic("lp-raw-token");
  for (const [postIn, pollIn] of [
    ["header", "query"],
    ["query", "header"],
  ]) {
    const session = new RawLongPoll(node(0).url, { user: `via-${postIn}` });
    await session.open();
    session.tokenIn = postIn;
    const posted = await session.post([["1", "1", topic, "phx_join", {}]]);
    assert.deepEqual([posted.http, posted.json], [200, { status: 200 }], `POST with the token in the ${postIn}`);
    session.tokenIn = pollIn;
    const reply = await session.pollUntil((frames) => frames.find((f) => f[1] === "1"), TIMEOUT, "the join reply");
    assert.deepEqual(reply.slice(0, 4), ["1", "1", topic, "phx_reply"]);
    assert.equal(reply[4].status, "ok");
    assert.equal(reply[4].response.user, `via-${postIn}`);
    // A 200 poll: the token, and every message a string holding one V2 frame.
    const answer = session.polls.find((p) => p.status === 200);
    assert.deepEqual(Object.keys(answer), ["status", "token", "messages"]);
    assert.equal(typeof answer.token, "string");
    const frames = answer.messages.every((m) => typeof m === "string" && JSON.parse(m).length === 5);
    assert.ok(frames, JSON.stringify(answer));
  }
  // phoenix.js 1.8's URL: the user's params, then `token` with the session token.
  const session = new RawLongPoll(node(0).url, { user: "appended" }, { tokenIn: "query" });
  await session.open();
  assert.deepEqual((await session.post([[null, "hb", "phoenix", "heartbeat", {}]])).json, { status: 200 });
  await session.pollUntil((frames) => frames.find((f) => f[1] === "hb"), TIMEOUT, "the heartbeat reply");

  for (const token of ["garbage", undefined]) {
    const answer = await longPollRequest(node(0).url, {
      method: "POST",
      token,
      body: JSON.stringify([null, "1", "phoenix", "heartbeat", {}]),
    });
    assert.deepEqual([answer.http, answer.json], [200, { status: 410 }], `POST with token ${token}`);
  }
});

/** A V2 binary push frame (kind 0) as phoenix.js encodes it, base64 as a LongPoll POST line carries it. */
function binaryPush(joinRef, ref, topic, event, payload) {
  const parts = [joinRef, ref, topic, event].map((s) => Buffer.from(s ?? ""));
  const header = Buffer.from([0, ...parts.map((p) => p.length)]);
  return Buffer.concat([header, ...parts, Buffer.from(payload)]).toString("base64");
}

test("raw: POST bodies of up to 100 frames are dispatched in order; a body that breaks a rule is refused whole and the session carries on", async () => {
  const base = node(0).url;
  const session = new RawLongPoll(base, { user: "batcher" });
  await session.open();
  const heartbeat = (ref) => [null, ref, "phoenix", "heartbeat", {}];
  const replies = (prefix) => session.frames.filter((f) => f[3] === "phx_reply" && String(f[1]).startsWith(prefix));

  // 100 frames: one POST, 100 replies in order.
  const hundred = Array.from({ length: 100 }, (_, i) => heartbeat(`ok-${i}`));
  assert.deepEqual((await session.post(hundred)).json, { status: 200 });
  await session.pollUntil(() => replies("ok-").length === 100, TIMEOUT, "100 heartbeat replies");
  assert.deepEqual(replies("ok-").map((f) => f[1]), hundred.map((f) => f[1]));

  // Refused bodies: nothing in them is dispatched.
  const lines = (frames) => frames.map((f) => JSON.stringify(f)).join("\n");
  const padded = (ref, size) => [null, ref, "phoenix", "heartbeat", { pad: "x".repeat(size) }];
  const invalid = { status: 400, reason: "invalid frame" };
  const refusals = [
    ["101 frames", lines(Array.from({ length: 101 }, (_, i) => heartbeat(`no-${i}`))),
      { status: 413, reason: "too many frames (at most 100 per request)" }],
    ["a frame over 64 KiB", lines([heartbeat("no-big-1"), padded("no-big-2", 70 * 1024)]),
      { status: 413, reason: "frame too large" }],
    ["a line that is not base64", `${JSON.stringify(heartbeat("no-b64"))}\nnot base64!`, invalid],
    ["a line that is not a frame", `${JSON.stringify(heartbeat("no-frame"))}\n[1,2]`, invalid],
    ["a body over 1 MiB", lines(Array.from({ length: 20 }, (_, i) => padded(`no-huge-${i}`, 60 * 1024))),
      { status: 413, reason: "body too large" }],
  ];
  for (const [what, body, expected] of refusals) {
    const answer = await longPollRequest(base, { method: "POST", token: session.token, body });
    assert.deepEqual([answer.http, answer.json], [200, expected], what);
  }

  // The session carries on: CRLF lines and blank lines, a base64 binary frame, and a body of another content type
  // (one text frame) are all dispatched. The replies come in order after the refused bodies, none of which left one.
  const binary = binaryPush(null, "after-2", "phoenix", "heartbeat", "{}");
  const mixed = `${JSON.stringify(heartbeat("after-1"))}\r\n\r\n${binary}\n`;
  assert.deepEqual((await session.post([mixed])).json, { status: 200 });
  const plain = await longPollRequest(base, {
    method: "POST",
    token: session.token,
    headers: { "Content-Type": "text/plain" },
    body: JSON.stringify(heartbeat("after-3")),
  });
  assert.deepEqual(plain.json, { status: 200 });
  await session.pollUntil(() => replies("after-").length === 3, TIMEOUT, "the replies after the refusals");
  assert.deepEqual(replies("after-").map((f) => f[1]), ["after-1", "after-2", "after-3"]);
  for (const reply of replies("after-")) assert.deepEqual(reply[4], { status: "ok", response: {} });
  assert.deepEqual(replies("no-"), [], "nothing of a refused body was dispatched");

  // A V1 session (vsn 1.0.0): frames are JSON objects, which a client POSTs one per request with another content type.
  const v1 = new RawLongPoll(base, { vsn: "1.0.0", user: "oldtimer" });
  await v1.open();
  const v1Post = await longPollRequest(base, {
    method: "POST",
    token: v1.token,
    headers: { "Content-Type": "text/plain" },
    body: JSON.stringify({ topic: "phoenix", event: "heartbeat", payload: {}, ref: "v1" }),
  });
  assert.deepEqual(v1Post.json, { status: 200 });
  const v1Reply = await v1.pollUntil((frames) => frames.find((f) => f.ref === "v1"), TIMEOUT, "the V1 heartbeat reply");
  assert.deepEqual(
    { topic: v1Reply.topic, event: v1Reply.event, payload: v1Reply.payload },
    { topic: "phoenix", event: "phx_reply", payload: { status: "ok", response: {} } },
  );
});
