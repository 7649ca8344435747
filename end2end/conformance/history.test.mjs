// Conformance: history with the unmodified phoenix.js client. Covers the history in a later joiner's join reply
// (latest 50, oldest first), recovery with `{last_seen_id}` join params (exactly the gap), `history:before` paging,
// and joins racing concurrent senders (join history + broadcasts: no gaps, no duplicates).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  RATE_LIMIT,
  assertMessageShape,
  bodies,
  clientsFor,
  joinOk,
  push,
  pushOk,
  record,
  seed,
  startTarget,
  uniqueTopic,
  waitForMessage,
} from "./helpers.mjs";

let server;
before(async () => {
  server = await startTarget();
});
after(async () => {
  await server?.stop({ removeData: true });
});

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test("a later joiner gets the room's messages in the join reply, oldest first", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("later");
  const alice = await c.joined(topic, { socket: { params: { user: "alice" } } });
  const sent = [];
  for (const body of ["first", "second", "third"]) {
    sent.push({ id: (await pushOk(alice.channel, "message:new", { body })).id, body });
  }

  const bob = await c.connected({ params: { user: "bob" } });
  const reply = await joinOk(bob.channel(topic, {}));
  assert.equal(reply.user, "bob");
  assert.equal(reply.recovered, true);
  assert.deepEqual(
    reply.messages.map(({ id, body, user }) => ({ id, body, user })),
    sent.map((m) => ({ ...m, user: "alice" })),
  );
  reply.messages.forEach((m) => assertMessageShape(assert, m));
  const stamps = reply.messages.map((m) => m.timestamp);
  assert.deepEqual(stamps, [...stamps].sort((a, b) => a - b), "timestamps never go backwards");
});

test("the join reply without last_seen_id holds only the latest 50 messages", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("latest50");
  const ids = await seed(server, topic, bodies(55));
  assert.deepEqual(ids, range(1, 55));
  const { reply } = await c.joined(topic, { socket: { params: { user: "late" } } });
  assert.equal(reply.recovered, true);
  assert.deepEqual(reply.messages.map((m) => m.id), range(6, 55));
  assert.deepEqual(reply.messages.map((m) => m.body), bodies(55).slice(5));
});

test("join with {last_seen_id: N} returns exactly the messages after N", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("gap");
  await seed(server, topic, bodies(60));
  const socket = await c.connected({ params: { user: "returning" } });
  const cases = [
    [57, range(58, 60)],
    [0, range(1, 60)], // more than 50, but a gap of up to 1000 is recovered whole
    [59, [60]],
    [60, []], // up to date: nothing missed
  ];
  for (const [lastSeen, expected] of cases) {
    const channel = socket.channel(topic, { last_seen_id: lastSeen });
    const reply = await joinOk(channel);
    assert.equal(reply.recovered, true, `last_seen_id ${lastSeen}`);
    assert.deepEqual(reply.messages.map((m) => m.id), expected, `last_seen_id ${lastSeen}`);
    channel.leave();
  }
});

test("history:before pages backwards, oldest first, without gaps or overlaps", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("paging");
  await seed(server, topic, bodies(45));
  const { channel, reply } = await c.joined(topic, { socket: { params: { user: "reader" } } });
  assert.deepEqual(reply.messages.map((m) => m.id), range(1, 45));

  // Page from the newest down, 20 at a time, like a client scrolling up from its oldest loaded message.
  const pages = [];
  let before = 46;
  for (;;) {
    const { messages } = await pushOk(channel, "history:before", { before_id: before, limit: 20 });
    if (messages.length === 0) break;
    messages.forEach((m) => assertMessageShape(assert, m));
    pages.push(messages.map((m) => m.id));
    before = messages[0].id;
  }
  assert.deepEqual(pages, [range(26, 45), range(6, 25), range(1, 5)]);

  // The same messages as in the join reply.
  const { messages: all } = await pushOk(channel, "history:before", { before_id: 46, limit: 100 });
  assert.deepEqual(all, reply.messages);

  // before_id is exclusive and the reply shape is exactly {messages}.
  assert.deepEqual(await pushOk(channel, "history:before", { before_id: 1, limit: 10 }), { messages: [] });
  const { messages: two } = await pushOk(channel, "history:before", { before_id: 10, limit: 2 });
  assert.deepEqual(two.map((m) => m.id), [8, 9]);
});

test("history:before without a limit defaults to 50 and never returns more than 100", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("limits");
  await seed(server, topic, bodies(120));
  const { channel } = await c.joined(topic, { socket: { params: { user: "reader" } } });
  const { messages: byDefault } = await pushOk(channel, "history:before", { before_id: 121 });
  assert.deepEqual(byDefault.map((m) => m.id), range(71, 120));
  const { messages: max } = await pushOk(channel, "history:before", { before_id: 121, limit: 100 });
  assert.deepEqual(max.map((m) => m.id), range(21, 120));
  // Over 100: the contract only says L <= 100; the server may clamp (it does today) but never returns more.
  const large = await push(channel, "history:before", { before_id: 121, limit: 1000 });
  if (large.status === "ok") {
    assert.deepEqual(large.response.messages.map((m) => m.id), range(21, 120));
  } else {
    assert.deepEqual(large, { status: "error", response: { reason: "invalid payload" } });
  }
  const invalid = await push(channel, "history:before", { limit: 10 });
  assert.deepEqual(invalid, { status: "error", response: { reason: "invalid payload" } });
});

test("joining while others are sending: join reply history plus broadcasts have no gaps and no duplicates", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("race");
  const senders = [];
  for (let i = 0; i < 4; i += 1) senders.push(await c.joined(topic, { socket: { params: { user: `sender${i}` } } }));
  let sent = 0;
  const sending = senders.map(async ({ channel }, i) => {
    for (let n = 0; n < RATE_LIMIT; n += 1) {
      await pushOk(channel, "message:new", { body: `s${i}-${n}` });
      sent += 1;
    }
  });
  // Join repeatedly while the messages are flowing, half of the joins recovering from a recent last_seen_id.
  const joiners = [];
  for (let j = 0; j < 16; j += 1) {
    const socket = await c.connected({ params: { user: `joiner${j}` } });
    const channel = socket.channel(topic, j % 2 ? { last_seen_id: Math.max(0, sent - 3) } : {});
    const live = record(channel);
    const reply = await joinOk(channel);
    joiners.push({ live, reply });
  }
  await Promise.all(sending);
  // A barrier message: once every joiner has it, every earlier broadcast has arrived too.
  const { channel: last } = await c.joined(topic, { socket: { params: { user: "barrier" } } });
  const { id: barrier } = await pushOk(last, "message:new", { body: "barrier" });
  assert.equal(barrier, senders.length * RATE_LIMIT + 1);
  for (const [j, { live, reply }] of joiners.entries()) {
    await waitForMessage(live, barrier);
    assert.equal(reply.recovered, true);
    const ids = [...reply.messages.map((m) => m.id), ...live.map((m) => m.id)];
    assert.equal(new Set(ids).size, ids.length, `joiner ${j}: no duplicates`);
    // History then broadcasts: ascending ids with no gap (broadcasts arrive in id order).
    assert.deepEqual(ids, range(ids[0], barrier), `joiner ${j}: in order, no gaps from ${ids[0]} to ${barrier}`);
    const newestInReply = Math.max(0, ...reply.messages.map((m) => m.id));
    assert.ok(live.every((m) => m.id > newestInReply), `joiner ${j}: no broadcast repeats the reply's history`);
  }
});
