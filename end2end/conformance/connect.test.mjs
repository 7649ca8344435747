// Conformance: connecting and joining with the unmodified phoenix.js client. Covers the join reply (user, messages,
// recovered) and its frame, guest names, join refusals (unmatched topic, invalid room), heartbeats via socket.ping(),
// and HTTP 403 refusals at connect (unsupported vsn, invalid user name).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { clientsFor, join, joinOk, rawHandshake, startTarget, uniqueTopic, waitFor } from "./helpers.mjs";

let server;
before(async () => {
  server = await startTarget();
});
after(async () => {
  await server?.stop({ removeData: true });
});

test("join replies ok with the user from the socket params, no messages and recovered: true", async (t) => {
  const c = clientsFor(t, server);
  const socket = await c.connected({ params: { user: "alice" } });
  const topic = uniqueTopic("join");
  const channel = socket.channel(topic, {});
  const reply = await joinOk(channel);
  assert.deepEqual(reply, { user: "alice", messages: [], recovered: true });
  assert.equal(channel.state, "joined");

  // The reply frame itself: [join_ref, ref, topic, "phx_reply", {status, response}] with join_ref == ref == the join's ref.
  const frame = socket.received.find((m) => m.topic === topic && m.event === "phx_reply");
  assert.ok(frame, "join reply frame recorded");
  assert.equal(frame.join_ref, channel.joinRef());
  assert.equal(frame.ref, channel.joinRef());
  assert.deepEqual(frame.payload, { status: "ok", response: reply });
});

test("the user param is trimmed and may use letters, digits, spaces and -_.'", async (t) => {
  const c = clientsFor(t, server);
  const socket = await c.connected({ params: { user: "  Zoë O'Neil_2.x-y  " } });
  const reply = await joinOk(socket.channel(uniqueTopic("name"), {}));
  assert.equal(reply.user, "Zoë O'Neil_2.x-y");
});

test("a socket without a user param is assigned a random two-word guest name", async (t) => {
  const c = clientsFor(t, server);
  const first = await c.connected();
  const second = await c.connected();
  const topic = uniqueTopic("guest");
  const a = await joinOk(first.channel(topic, {}));
  const b = await joinOk(second.channel(topic, {}));
  for (const reply of [a, b]) {
    assert.match(reply.user, /^[a-z]+-[a-z]+$/, `guest name ${reply.user}`);
    assert.deepEqual(reply.messages, []);
    assert.equal(reply.recovered, true);
  }
  // The identity belongs to the socket: a second room on the same socket sees the same name.
  const again = await joinOk(first.channel(uniqueTopic("guest"), {}));
  assert.equal(again.user, a.user);
});

test("joining a topic with another prefix fails with unmatched topic and a null join_ref", async (t) => {
  const c = clientsFor(t, server);
  const socket = await c.connected({ params: { user: "bob" } });
  for (const topic of ["lobby:main", "rooms:abc", "room", "phoenix"]) {
    const channel = socket.channel(topic, {});
    const result = await join(channel);
    assert.deepEqual(result, { status: "error", response: { reason: "unmatched topic" } }, topic);
    const frame = socket.received.find((m) => m.topic === topic && m.event === "phx_reply");
    assert.equal(frame.join_ref, null, `${topic}: unmatched-topic replies carry a null join_ref`);
    channel.leave(); // stop phoenix.js from retrying the join forever
  }
});

test("joining a malformed or reserved room slug fails with invalid room", async (t) => {
  const c = clientsFor(t, server);
  const socket = await c.connected({ params: { user: "carol" } });
  const bad = ["", "Upper", "-lead", "trail-", "under_score", "sp ace", "a".repeat(65), "socket", "healthz", "readyz", "api"];
  for (const slug of bad) {
    const channel = socket.channel(`room:${slug}`, {});
    const result = await join(channel);
    assert.deepEqual(result, { status: "error", response: { reason: "invalid room" } }, `room:${slug}`);
    channel.leave();
  }
  // Boundaries that are valid.
  for (const slug of ["a", "0", "a-b", "a".repeat(64), "socket-2"]) {
    const channel = socket.channel(`room:${slug}`, {});
    const reply = await joinOk(channel);
    assert.equal(reply.user, "carol", `room:${slug}`);
    channel.leave();
  }
});

test("socket.ping() gets the heartbeat reply and reports a latency", async (t) => {
  const c = clientsFor(t, server);
  const socket = await c.connected({ params: { user: "dave" } });
  const rtts = [];
  for (let i = 0; i < 3; i += 1) {
    const rtt = await new Promise((resolve, reject) => {
      if (!socket.ping(resolve)) reject(new Error("ping refused: socket not connected"));
    });
    assert.equal(typeof rtt, "number");
    assert.ok(rtt >= 0 && rtt < 5_000, `rtt ${rtt}`);
    rtts.push(rtt);
  }
  // The reply frame: [null, ref, "phoenix", "phx_reply", {status: "ok", response: {}}].
  const replies = socket.received.filter((m) => m.topic === "phoenix");
  assert.equal(replies.length, 3);
  for (const reply of replies) {
    assert.equal(reply.join_ref, null);
    assert.equal(reply.event, "phx_reply");
    assert.equal(typeof reply.ref, "string");
    assert.deepEqual(reply.payload, { status: "ok", response: {} });
  }
  assert.equal(new Set(replies.map((r) => r.ref)).size, 3, "each heartbeat reply echoes its own ref");
});

test("an unsupported vsn is refused with HTTP 403 and the phoenix socket never opens", async (t) => {
  for (const vsn of ["3.0.0", "2.0", "abc"]) {
    const result = await rawHandshake(server.wsUrl, `vsn=${vsn}&user=eve`);
    assert.equal(result.statusCode, 403, `vsn=${vsn}: ${JSON.stringify(result)}`);
  }
  assert.deepEqual(await rawHandshake(server.wsUrl, "vsn=2.0.0&user=eve"), { open: true }, "control: 2.0.0 opens");

  const c = clientsFor(t, server);
  const socket = c.socket({ params: { user: "eve" }, vsn: "3.0.0" });
  socket.connect();
  // onError fires for the refused handshake, and again for phoenix.js's retry: still no open.
  await waitFor(() => socket.errors >= 2, 5_000, "two connection errors");
  assert.equal(socket.opens, 0);
  assert.equal(socket.isConnected(), false);
});

test("an invalid user name is refused with HTTP 403 and the phoenix socket never opens", async (t) => {
  const invalid = ["", "   ", "a<b", "x".repeat(33), "tab\there", "bell\u0007", "semi;colon"];
  for (const user of invalid) {
    const result = await rawHandshake(server.wsUrl, `vsn=2.0.0&user=${encodeURIComponent(user)}`);
    assert.equal(result.statusCode, 403, `user=${JSON.stringify(user)}: ${JSON.stringify(result)}`);
  }
  assert.deepEqual(await rawHandshake(server.wsUrl, `vsn=2.0.0&user=${"x".repeat(32)}`), { open: true }, "32 chars");

  const c = clientsFor(t, server);
  const socket = c.socket({ params: { user: "a<b" } });
  socket.connect();
  await waitFor(() => socket.errors >= 2, 5_000, "two connection errors");
  assert.equal(socket.opens, 0);
  assert.equal(socket.isConnected(), false);
});
