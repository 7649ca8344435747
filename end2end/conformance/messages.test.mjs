// Conformance: `message:new` and the other room pushes with the unmodified phoenix.js client. Covers the ok {id}
// reply and id sequence, the broadcast to every member (sender included) with the Message shape, the error replies
// (empty message, message too long, invalid payload, unknown event, rate limited), `typing`, and idempotent retry
// with `client_id`, and the id order of broadcasts under concurrent senders.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";

import {
  RATE_LIMIT,
  assertMessageShape,
  clientsFor,
  push,
  pushOk,
  record,
  startTarget,
  uniqueTopic,
  waitFor,
  waitForMessage,
} from "./helpers.mjs";

let server;
before(async () => {
  server = await startTarget();
});
after(async () => {
  await server?.stop({ removeData: true });
});

test("message:new replies ok {id}; ids in a fresh room start at 1 and increase by one", async (t) => {
  const c = clientsFor(t, server);
  const { channel } = await c.joined(uniqueTopic("ids"), { socket: { params: { user: "alice" } } });
  const ids = [];
  for (const body of ["one", "two", "three"]) {
    const response = await pushOk(channel, "message:new", { body });
    assert.deepEqual(Object.keys(response), ["id"]);
    ids.push(response.id);
  }
  assert.deepEqual(ids, [1, 2, 3]);
});

test("message:new is broadcast with the Message shape to every member, the sender included", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("broadcast");
  const alice = await c.joined(topic, { socket: { params: { user: "alice" } } });
  const bob = await c.joined(topic, { socket: { params: { user: "bob" } } });
  const outsider = await c.joined(uniqueTopic("elsewhere"), { socket: { params: { user: "olga" } } });
  const atAlice = record(alice.channel);
  const atBob = record(bob.channel);
  const atOutsider = record(outsider.channel);

  const before = Date.now();
  const { id } = await pushOk(alice.channel, "message:new", { body: "  hello, bob  " });
  const toAlice = await waitForMessage(atAlice, id);
  const toBob = await waitForMessage(atBob, id);
  const after = Date.now();

  for (const message of [toAlice, toBob]) {
    assertMessageShape(assert, message);
    assert.equal(message.user, "alice");
    assert.equal(message.body, "hello, bob", "surrounding whitespace is trimmed");
    assert.ok(message.timestamp >= before - 1_000 && message.timestamp <= after + 1_000, "server clock in ms");
  }
  assert.deepEqual(toAlice, toBob);

  // The broadcast frame is a fastlane broadcast: [null, null, topic, "message:new", Message].
  const frame = bob.socket.received.find((m) => m.event === "message:new");
  assert.equal(frame.join_ref, null);
  assert.equal(frame.ref, null);
  assert.equal(frame.topic, topic);

  // The sender sees its ok reply before the broadcast of the same message (other events, e.g. presence, may interleave).
  const atTopic = alice.socket.received.filter((m) => m.topic === topic);
  const replyAt = atTopic.findIndex((m) => m.event === "phx_reply" && m.payload.response?.id === id);
  const broadcastAt = atTopic.findIndex((m) => m.event === "message:new" && m.payload.id === id);
  assert.ok(replyAt >= 0 && broadcastAt > replyAt, `reply at ${replyAt}, broadcast at ${broadcastAt}`);

  // Bob's reply goes to alice too; nothing reaches another room.
  const { id: id2 } = await pushOk(bob.channel, "message:new", { body: "hi alice" });
  assert.equal((await waitForMessage(atAlice, id2)).user, "bob");
  await waitForMessage(atBob, id2);
  assert.deepEqual(atAlice.map((m) => m.id), [id, id2], "exactly one broadcast per message");
  assert.deepEqual(atOutsider, []);
});

test("message:new with an empty or whitespace-only body is refused with empty message", async (t) => {
  const c = clientsFor(t, server);
  const { channel } = await c.joined(uniqueTopic("empty"), { socket: { params: { user: "alice" } } });
  const seen = record(channel);
  for (const body of ["", "   ", "\n\t "]) {
    const result = await push(channel, "message:new", { body });
    assert.deepEqual(result, { status: "error", response: { reason: "empty message" } }, JSON.stringify(body));
  }
  // Nothing was stored or broadcast: the next message gets id 1 and is the only broadcast.
  const { id } = await pushOk(channel, "message:new", { body: "real" });
  assert.equal(id, 1);
  await waitForMessage(seen, id);
  assert.deepEqual(seen.map((m) => m.body), ["real"]);
});

test("message:new over 4000 characters is refused with message too long; 4000 is accepted", async (t) => {
  const c = clientsFor(t, server);
  const { channel } = await c.joined(uniqueTopic("long"), { socket: { params: { user: "alice" } } });
  const seen = record(channel);
  const tooLong = await push(channel, "message:new", { body: "x".repeat(4001) });
  assert.deepEqual(tooLong, { status: "error", response: { reason: "message too long" } });
  // Characters, not bytes: 4001 two-byte characters are too long, 4000 of them are fine.
  const tooLongUnicode = await push(channel, "message:new", { body: "é".repeat(4001) });
  assert.deepEqual(tooLongUnicode, { status: "error", response: { reason: "message too long" } });

  const { id } = await pushOk(channel, "message:new", { body: "é".repeat(4000) });
  assert.equal(id, 1, "the refused messages were not stored");
  // The limit applies after trimming.
  const { id: padded } = await pushOk(channel, "message:new", { body: `  ${"y".repeat(4000)}  ` });
  assert.equal(padded, 2);
  assert.equal((await waitForMessage(seen, padded)).body, "y".repeat(4000));
});

test("message:new with a non-object or wrongly typed payload is refused with invalid payload", async (t) => {
  const c = clientsFor(t, server);
  const { channel, socket } = await c.joined(uniqueTopic("invalid"), { socket: { params: { user: "alice" } } });
  const payloads = ["hello", 42, null, ["body"], {}, { body: 42 }, { body: null }, { text: "hi" }, { body: "hi", client_id: 7 }];
  for (const payload of payloads) {
    const result = await push(channel, "message:new", payload);
    assert.deepEqual(result, { status: "error", response: { reason: "invalid payload" } }, JSON.stringify(payload));
  }
  // The connection and the channel survive every refusal.
  assert.equal(socket.isConnected(), true);
  assert.equal(channel.state, "joined");
  assert.deepEqual(await pushOk(channel, "message:new", { body: "still here" }), { id: 1 });
});

test("an unknown event gets error unknown event and the channel stays joined", async (t) => {
  const c = clientsFor(t, server);
  const { channel } = await c.joined(uniqueTopic("unknown"), { socket: { params: { user: "alice" } } });
  for (const event of ["new_msg", "message:delete", "presence", "phx_unknown"]) {
    const result = await push(channel, event, { body: "x" });
    assert.deepEqual(result, { status: "error", response: { reason: "unknown event" } }, event);
  }
  assert.equal(channel.state, "joined");
  assert.deepEqual(await pushOk(channel, "message:new", { body: "ok" }), { id: 1 });
});

test("typing replies ok {} for true and false, and invalid payload otherwise", async (t) => {
  const c = clientsFor(t, server);
  const { channel } = await c.joined(uniqueTopic("typing"), { socket: { params: { user: "alice" } } });
  assert.deepEqual(await push(channel, "typing", { typing: true }), { status: "ok", response: {} });
  assert.deepEqual(await push(channel, "typing", { typing: false }), { status: "ok", response: {} });
  assert.deepEqual(await push(channel, "typing", { typing: "yes" }), {
    status: "error",
    response: { reason: "invalid payload" },
  });
});

test("a retry with the same client_id returns the original id and is not broadcast again", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("retry");
  const alice = await c.joined(topic, { socket: { params: { user: "alice" } } });
  const bob = await c.joined(topic, { socket: { params: { user: "bob" } } });
  const atAlice = record(alice.channel);
  const atBob = record(bob.channel);

  const clientId = randomUUID();
  const { id } = await pushOk(alice.channel, "message:new", { body: "once", client_id: clientId });
  await waitForMessage(atBob, id);
  const retry = await pushOk(alice.channel, "message:new", { body: "once", client_id: clientId });
  assert.deepEqual(retry, { id });
  // A retry from a new connection (the usual case: the first connection dropped before the reply) is a retry too.
  const again = await c.joined(topic, { socket: { params: { user: "alice" } } });
  const retryElsewhere = await pushOk(again.channel, "message:new", { body: "once", client_id: clientId });
  assert.deepEqual(retryElsewhere, { id });

  // A later message is a barrier: broadcasts arrive in order, so a duplicate would have come before it.
  const { id: barrier } = await pushOk(alice.channel, "message:new", { body: "barrier", client_id: randomUUID() });
  assert.equal(barrier, id + 1, "the retries consumed no id");
  await waitForMessage(atAlice, barrier);
  await waitForMessage(atBob, barrier);
  assert.deepEqual(atAlice.map((m) => m.id), [id, barrier]);
  assert.deepEqual(atBob.map((m) => m.id), [id, barrier]);

  // client_id is per room: the same one in another room stores a new message.
  const other = await c.joined(uniqueTopic("retry-other"), { socket: { params: { user: "alice" } } });
  assert.deepEqual(await pushOk(other.channel, "message:new", { body: "once", client_id: clientId }), { id: 1 });
});

test(`more than ${RATE_LIMIT} message:new per socket in 10 s are refused with rate limited and not stored`, async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("rate");
  const { channel } = await c.joined(topic, { socket: { params: { user: "spammer" } } });
  const seen = record(channel);
  for (let i = 1; i <= RATE_LIMIT; i += 1) {
    assert.deepEqual(await pushOk(channel, "message:new", { body: `m${i}` }), { id: i });
  }
  const refused = await push(channel, "message:new", { body: "one too many" });
  assert.deepEqual(refused, { status: "error", response: { reason: "rate limited" } });

  // The limit is per socket: another socket in the same room may still send, and gets the next id.
  const other = await c.joined(topic, { socket: { params: { user: "calm" } } });
  assert.deepEqual(await pushOk(other.channel, "message:new", { body: "calm" }), { id: RATE_LIMIT + 1 });
  await waitForMessage(seen, RATE_LIMIT + 1);
  assert.equal(seen.length, RATE_LIMIT + 1);
  assert.ok(!seen.some((m) => m.body === "one too many"));
  await waitFor(() => channel.state === "joined");
});

test(
  "message:new broadcasts reach every member in id order, also with concurrent senders",
  async (t) => {
    const c = clientsFor(t, server);
    const topic = uniqueTopic("order");
    const observer = await c.joined(topic, { socket: { params: { user: "observer" } } });
    const seen = record(observer.channel);
    const senders = [];
    for (let i = 0; i < 4; i += 1) senders.push(await c.joined(topic, { socket: { params: { user: `sender${i}` } } }));
    await Promise.all(
      senders.map(async ({ channel }, i) => {
        for (let n = 0; n < 10; n += 1) await pushOk(channel, "message:new", { body: `s${i}-${n}` });
      }),
    );
    await waitForMessage(seen, 40);
    const ids = seen.map((m) => m.id);
    assert.deepEqual([...ids].sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i + 1), "all 40, once each");
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), "in id order");
  },
);
