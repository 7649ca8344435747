// Conformance: presence with the unmodified phoenix.js `Presence` class. Covers the joiner's first sync (own meta with
// online_at and typing), joins and leaves reaching observers through onJoin/onLeave, one key with one meta per
// connection, a dropped connection leaving and coming back, `typing` updates (leave + join with phx_ref_prev), the
// re-sync after a rejoin, and a join storm whose coalesced diffs every member's Presence must fold to the same list.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Presence } from "phoenix";

import { TIMEOUT, clientsFor, joinOk, pushOk, startTarget, uniqueTopic, waitFor } from "./helpers.mjs";

let server;
before(async () => {
  server = await startTarget();
});
after(async () => {
  await server?.stop({ removeData: true });
});

/** JSON copy of a callback argument (phoenix.js mutates its state objects later); keeps `undefined`. */
function copy(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

/** The presences of `presence.list()` as a plain {key: metas} object, keys sorted, metas sorted by phx_ref. */
function view(presence) {
  const entries = presence.list((key, { metas }) => [key, copy(metas)]);
  return normalize(Object.fromEntries(entries.map(([key, metas]) => [key, { metas }])));
}

/** A presence_state-shaped object ({key: {metas}}) as {key: metas}, keys sorted, metas sorted by phx_ref. */
function normalize(state) {
  const out = {};
  for (const key of Object.keys(state).sort()) {
    out[key] = [...state[key].metas].sort((a, b) => (a.phx_ref < b.phx_ref ? -1 : a.phx_ref > b.phx_ref ? 1 : 0));
  }
  return out;
}

/**
 * Attaches a phoenix.js Presence to `channel` (before it joins, so the presence_state is not missed) and records
 * every callback: joins/leaves as copies, and a snapshot of the list at every onSync.
 */
function watch(channel) {
  const presence = new Presence(channel);
  const w = { presence, joins: [], leaves: [], syncs: [] };
  presence.onJoin((key, current, newPres) => w.joins.push({ key, current: copy(current), newPres: copy(newPres) }));
  presence.onLeave((key, current, leftPres) => w.leaves.push({ key, current: copy(current), leftPres: copy(leftPres) }));
  presence.onSync(() => w.syncs.push(view(presence)));
  return w;
}

/**
 * Connects a socket as `user`, attaches a watched Presence to `topic` and joins it.
 * Resolves {socket, channel, reply, presence, joins, leaves, syncs}.
 */
async function member(c, topic, user, socketOptions = {}) {
  const socket = await c.connected({ ...socketOptions, params: { user } });
  const channel = socket.channel(topic, {});
  const w = watch(channel);
  const reply = await joinOk(channel);
  return { socket, channel, reply, ...w };
}

/** Whether `m`'s Presence has processed the presence_state of the channel's current join. */
function synced(m) {
  return m.channel.state === "joined" && m.presence.joinRef === m.channel.joinRef() && m.syncs.length > 0;
}

/** Waits until `m`'s list satisfies `predicate(view)`; resolves that view. */
function waitForView(m, predicate, what, ms = TIMEOUT) {
  return waitFor(
    () => {
      if (!synced(m)) return undefined;
      const v = view(m.presence);
      return predicate(v) ? v : undefined;
    },
    ms,
    what,
  ).catch((error) => {
    error.message += `; last list: ${JSON.stringify(view(m.presence))}`;
    throw error;
  });
}

/** The metas of `key` in view `v` (empty if absent). */
const metasOf = (v, key) => v[key] || [];

/** The phx_refs of every meta in view `v`. */
const allRefs = (v) => Object.values(v).flatMap((metas) => metas.map((m) => m.phx_ref));

test("a joiner's first sync lists itself with online_at (ms epoch) and typing false", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("pres-self");
  const before = Date.now();
  const alice = await member(c, topic, "alice");
  await waitFor(() => alice.syncs.length > 0, TIMEOUT, "alice's first onSync");
  const afterJoin = Date.now();

  const first = alice.syncs[0];
  assert.deepEqual(Object.keys(first), ["alice"], "the first sync lists exactly the joiner");
  assert.equal(first.alice.length, 1, "one meta for one connection");
  const meta = first.alice[0];
  assert.deepEqual(Object.keys(meta).sort(), ["online_at", "phx_ref", "typing"]);
  assert.ok(Number.isInteger(meta.online_at), `online_at ${meta.online_at} is an integer`);
  // Same machine, same clock: the meta was created while the join was in flight (1 s slack for clock granularity).
  assert.ok(
    meta.online_at >= before - 1000 && meta.online_at <= afterJoin + 1000,
    `online_at ${meta.online_at} within [${before}, ${afterJoin}]`,
  );
  assert.equal(meta.typing, false);
  assert.equal(typeof meta.phx_ref, "string");
  assert.ok(meta.phx_ref.length > 0, "phx_ref is not empty");
  assert.equal(alice.channel.state, "joined");
  // The own join may also arrive as a diff (either order); either way it is one key with one meta.
  assert.ok(alice.joins.length >= 1 && alice.joins.every((j) => j.key === "alice"), JSON.stringify(alice.joins));
  assert.deepEqual(alice.leaves, []);
  assert.deepEqual(view(alice.presence), first);
});

test("a second user's join reaches the first via onJoin and appears in list()", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("pres-join");
  const alice = await member(c, topic, "alice");
  await waitFor(() => synced(alice), TIMEOUT, "alice synced");

  const bob = await member(c, topic, "bob");
  const seen = await waitForView(alice, (v) => "bob" in v, "bob in alice's list");
  const bobJoin = await waitFor(() => alice.joins.find((j) => j.key === "bob"), TIMEOUT, "onJoin for bob");
  assert.equal(bobJoin.current, undefined, "bob is a new key for alice");
  assert.equal(bobJoin.newPres.metas.length, 1);
  const bobMeta = bobJoin.newPres.metas[0];
  assert.equal(bobMeta.typing, false);
  assert.ok(Number.isInteger(bobMeta.online_at));
  assert.deepEqual(seen.bob, [bobMeta]);
  assert.deepEqual(Object.keys(seen), ["alice", "bob"]);
  assert.equal(seen.alice.length, 1);

  // bob's own list agrees with alice's.
  const bobView = await waitForView(bob, (v) => "alice" in v && "bob" in v, "alice and bob in bob's list");
  assert.deepEqual(bobView, seen);
  assert.deepEqual(alice.leaves, []);
  assert.deepEqual(bob.leaves, []);
});

test("the same user in two sockets is one key with two metas", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("pres-two");
  const bob = await member(c, topic, "bob");
  const alice1 = await member(c, topic, "alice");
  // Wait for the first connection's join, so the second one is a separate diff adding to an existing key.
  await waitForView(bob, (v) => metasOf(v, "alice").length === 1, "alice's first connection in bob's list");
  const alice2 = await member(c, topic, "alice");
  assert.equal(alice1.reply.user, "alice");
  assert.equal(alice2.reply.user, "alice");

  const twoMetas = (v) => Object.keys(v).length === 2 && metasOf(v, "alice").length === 2 && metasOf(v, "bob").length === 1;
  const bobView = await waitForView(bob, twoMetas, "alice with two metas in bob's list");
  const [m1, m2] = bobView.alice;
  assert.notEqual(m1.phx_ref, m2.phx_ref, "each connection has its own phx_ref");
  for (const meta of bobView.alice) assert.equal(meta.typing, false);
  assert.equal(bob.presence.list().length, 2, "list() yields one entry per key");

  // Both alice sockets see the same two metas under the one key.
  assert.deepEqual(await waitForView(alice1, twoMetas, "two metas in alice1's list"), bobView);
  assert.deepEqual(await waitForView(alice2, twoMetas, "two metas in alice2's list"), bobView);
  // The second connection joined an existing key: bob's onJoin for it had a current presence with one meta.
  const secondJoin = bob.joins.find((j) => j.key === "alice" && j.current !== undefined);
  assert.ok(secondJoin, `onJoin for alice's second meta with a current presence: ${JSON.stringify(bob.joins)}`);
  assert.equal(secondJoin.current.metas.length, 1);
});

test("closing one of two sockets of a user fires onLeave with one meta remaining; the key stays", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("pres-close");
  const bob = await member(c, topic, "bob");
  const alice1 = await member(c, topic, "alice");
  // Learn which meta is alice1's before the second connection joins.
  const oneMeta = await waitForView(bob, (v) => metasOf(v, "alice").length === 1, "alice1 in bob's list");
  const ref1 = oneMeta.alice[0].phx_ref;
  const alice2 = await member(c, topic, "alice");
  const both = await waitForView(bob, (v) => metasOf(v, "alice").length === 2, "alice with two metas");
  const ref2 = both.alice.find((m) => m.phx_ref !== ref1).phx_ref;

  await new Promise((resolve) => alice1.socket.disconnect(resolve));

  const leave = await waitFor(() => bob.leaves.find((l) => l.key === "alice"), TIMEOUT, "onLeave for alice");
  assert.deepEqual(leave.leftPres.metas.map((m) => m.phx_ref), [ref1], "the closed connection's meta left");
  assert.deepEqual(leave.current.metas.map((m) => m.phx_ref), [ref2], "the remaining presence holds one meta");
  const after = await waitForView(bob, (v) => metasOf(v, "alice").length === 1, "alice with one meta");
  assert.deepEqual(Object.keys(after), ["alice", "bob"], "the key stays");
  assert.equal(after.alice[0].phx_ref, ref2);
  assert.equal(bob.leaves.length, 1, `exactly one onLeave: ${JSON.stringify(bob.leaves)}`);

  // The other alice socket sees the same.
  assert.deepEqual(await waitForView(alice2, (v) => metasOf(v, "alice").length === 1, "alice2 sees one meta"), after);
});

test("a dropped connection leaves on an observer; phoenix.js reconnects, rejoins and the user comes back", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("pres-drop");
  const bob = await member(c, topic, "bob");
  const alice = await member(c, topic, "alice");
  const present = await waitForView(bob, (v) => metasOf(v, "alice").length === 1, "alice in bob's list");
  const oldRef = present.alice[0].phx_ref;
  const oldJoinRef = alice.channel.joinRef();
  const opensBefore = alice.socket.opens;

  alice.socket.conn.terminate(); // no close frame: the TCP connection just goes away

  const leave = await waitFor(
    () => bob.leaves.find((l) => l.key === "alice" && l.leftPres.metas.some((m) => m.phx_ref === oldRef)),
    TIMEOUT,
    "onLeave for alice's dropped connection",
  );
  assert.equal(leave.leftPres.metas.length, 1);
  assert.ok(!leave.current.metas.some((m) => m.phx_ref === oldRef), "the left meta is gone from the presence");

  // phoenix.js reconnects (reconnectAfterMs 50) and rejoins with a new join_ref; the user comes back with a new meta.
  await waitFor(() => alice.socket.opens > opensBefore, TIMEOUT, "alice's socket to reopen");
  await waitFor(() => synced(alice) && alice.channel.joinRef() !== oldJoinRef, TIMEOUT, "alice rejoined and synced");
  const rejoin = await waitFor(
    () => bob.joins.find((j) => j.key === "alice" && j.newPres.metas.some((m) => m.phx_ref !== oldRef)),
    TIMEOUT,
    "onJoin for alice's new connection",
  );
  assert.equal(rejoin.newPres.metas.length, 1);
  const back = await waitForView(
    bob,
    (v) => metasOf(v, "alice").length === 1 && v.alice[0].phx_ref !== oldRef,
    "alice back in bob's list with a new meta",
  );
  assert.deepEqual(Object.keys(back), ["alice", "bob"]);
  assert.equal(back.alice[0].typing, false);
});

test("typing: the update is a leave + join; observers see typing true, one meta, online_at unchanged", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("pres-typing");
  const bob = await member(c, topic, "bob");
  const alice = await member(c, topic, "alice");
  const initial = await waitForView(bob, (v) => metasOf(v, "alice").length === 1, "alice in bob's list");
  const old = initial.alice[0];
  const joinsBefore = bob.joins.length;
  const leavesBefore = bob.leaves.length;

  assert.deepEqual(await pushOk(alice.channel, "typing", { typing: true }), {});

  const typing = await waitForView(bob, (v) => metasOf(v, "alice").some((m) => m.typing === true), "alice typing");
  assert.equal(typing.alice.length, 1, "still one meta");
  const updated = typing.alice[0];
  assert.equal(updated.typing, true);
  assert.equal(updated.online_at, old.online_at, "online_at unchanged by an update");
  assert.notEqual(updated.phx_ref, old.phx_ref, "an update gets a new phx_ref");
  assert.equal(updated.phx_ref_prev, old.phx_ref, "phx_ref_prev is the replaced meta's ref");
  assert.deepEqual(typing.bob, initial.bob, "bob untouched");

  // As phoenix.js applies an update diff: onJoin with the old meta as current, then onLeave of the old meta.
  const joins = bob.joins.slice(joinsBefore);
  const leaves = bob.leaves.slice(leavesBefore);
  assert.deepEqual(joins, [{ key: "alice", current: { metas: [old] }, newPres: { metas: [updated] } }]);
  assert.deepEqual(leaves, [{ key: "alice", current: { metas: [updated] }, leftPres: { metas: [old] } }]);

  // alice's own list shows the same; typing false flips it back, again as one meta.
  assert.deepEqual(await waitForView(alice, (v) => metasOf(v, "alice")[0]?.typing === true, "alice sees herself typing"), typing);
  assert.deepEqual(await pushOk(alice.channel, "typing", { typing: false }), {});
  const stopped = await waitForView(
    bob,
    (v) => metasOf(v, "alice").length === 1 && v.alice[0].typing === false && v.alice[0].phx_ref !== updated.phx_ref,
    "alice stopped typing",
  );
  assert.equal(stopped.alice[0].online_at, old.online_at);
  assert.equal(stopped.alice[0].phx_ref_prev, updated.phx_ref);
});

test("a rejoin after a dropped connection re-syncs the client's Presence to the server's view", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("pres-resync");
  // alice's reconnect is held while she is away, so she deterministically misses an update and a join.
  let hold = true;
  const alice = await member(c, topic, "alice", { reconnectAfterMs: () => (hold ? 60_000 : 50) });
  const bob = await member(c, topic, "bob");
  const start = await waitForView(alice, (v) => "alice" in v && "bob" in v, "alice and bob in alice's list");
  const oldAliceRef = start.alice[0].phx_ref;
  const oldBobRef = start.bob[0].phx_ref;
  const oldJoinRef = alice.channel.joinRef();
  const opensBefore = alice.socket.opens;

  alice.socket.conn.terminate();
  await waitForView(bob, (v) => !("alice" in v), "alice gone from bob's list");
  assert.equal(alice.socket.opens, opensBefore, "alice is still away");

  // While alice is away: bob starts typing (update) and carol joins.
  await pushOk(bob.channel, "typing", { typing: true });
  const carol = await member(c, topic, "carol");
  await waitForView(bob, (v) => "carol" in v && metasOf(v, "bob")[0]?.typing === true, "bob typing and carol in bob's list");
  assert.equal(alice.socket.opens, opensBefore, "alice is still away");
  assert.ok(!alice.socket.isConnected());

  // Let alice reconnect now; phoenix.js rejoins with a new join_ref and a fresh presence_state.
  hold = false;
  alice.socket.reconnectTimer.scheduleTimeout();
  await waitFor(() => synced(alice) && alice.channel.joinRef() !== oldJoinRef, TIMEOUT, "alice rejoined and synced");

  // The server's view: the presence_state a fresh joiner receives.
  const probe = await member(c, topic, "dave");
  await waitFor(() => synced(probe), TIMEOUT, "probe synced");
  const stateFrame = probe.socket.received.find(
    (m) => m.topic === topic && m.event === "presence_state" && m.join_ref === probe.channel.joinRef(),
  );
  assert.ok(stateFrame, "the probe received presence_state");
  const serverView = normalize(stateFrame.payload);
  assert.deepEqual(Object.keys(serverView), ["alice", "bob", "carol", "dave"]);

  const aliceView = await waitForView(alice, (v) => "dave" in v, "the probe in alice's list");
  assert.deepEqual(aliceView, serverView, "alice's list equals the server's view");
  const refs = allRefs(aliceView);
  assert.equal(new Set(refs).size, refs.length, "no duplicate metas");
  for (const key of Object.keys(aliceView)) assert.equal(aliceView[key].length, 1, `${key} has one meta`);
  assert.ok(!refs.includes(oldAliceRef), "alice's dropped meta is gone");
  assert.ok(!refs.includes(oldBobRef), "bob's pre-update meta is gone");
  assert.equal(aliceView.bob[0].typing, true, "the missed update is in the re-synced list");
  assert.equal(aliceView.bob[0].phx_ref_prev, oldBobRef);
  // The re-sync told alice about what changed while she was away.
  assert.ok(alice.leaves.some((l) => l.key === "alice" && l.leftPres.metas.some((m) => m.phx_ref === oldAliceRef)));
  assert.ok(alice.joins.some((j) => j.key === "carol"));
  // Everyone else agrees too.
  for (const other of [bob, carol, probe]) {
    assert.deepEqual(await waitForView(other, (v) => "dave" in v && "alice" in v, "full list"), serverView);
  }
});

test("30 sockets joining at once: every Presence converges to the same 30 keys", async (t) => {
  const N = 30;
  const LONG = 20_000; // 30 connections on a debug build
  const c = clientsFor(t, server);
  const topic = uniqueTopic("pres-storm");
  const users = Array.from({ length: N }, (_, i) => `user${String(i + 1).padStart(2, "0")}`);
  const members = await Promise.all(users.map((user) => member(c, topic, user, { timeout: LONG })));

  const complete = (v) => Object.keys(v).length === N && Object.values(v).every((metas) => metas.length === 1);
  const views = [];
  for (const m of members) views.push(await waitForView(m, complete, `30 keys in ${m.reply.user}'s list`, LONG));
  assert.deepEqual(Object.keys(views[0]), users);
  for (let i = 1; i < N; i += 1) assert.deepEqual(views[i], views[0], `${users[i]} agrees with ${users[0]}`);
  for (const m of members) assert.deepEqual(m.leaves, [], `no onLeave on ${m.reply.user}`);
  const diffs = members[0].socket.received.filter((m) => m.topic === topic && m.event === "presence_diff").length;
  t.diagnostic(`the first joiner received ${diffs} presence_diff frames for ${N - 1} later joins`);
});
