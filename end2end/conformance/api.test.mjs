// Conformance: the HTTP API for backends (docs/protocol.md §12) seen from the official phoenix.js client. A message
// a backend posts with an API key reaches every member of the room as `message:new` (on every node of a cluster), in
// id order with the members' own messages, once however often the backend retries with its `client_id`; the API's
// presence lists the members of every node. The key is made with `server api-key create` against the server's own
// database (the data directory, or a cluster's PostgreSQL), as an operator would.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, test } from "node:test";

import { serverBinary } from "../support/server.mjs";
import {
  assertMessageShape,
  clientsFor,
  nodesOf,
  pushOk,
  record,
  startTarget,
  TIMEOUT,
  uniqueTopic,
  waitForMessage,
} from "./helpers.mjs";

let server;
let key;
before(async () => {
  server = await startTarget();
  // The log's "listening" comes before the store is open; an HTTP answer comes after its migrations, so the command
  // opens a database that is ready (a race would cost it a second migration run, store/schema.rs).
  await eventually(
    () => fetch(`${server.url}/healthz`).then((response) => response.status, () => 0),
    (status) => status === 200,
  );
  const database = server.cluster
    ? ["--database-url", server.cluster.postgres.url]
    : ["--data-dir", server.dataDir];
  key = execFileSync(serverBinary(), ["api-key", "create", "--name", "conformance", ...database], {
    encoding: "utf8",
  }).trim();
});
after(async () => {
  await server?.stop({ removeData: true });
});

/** `method path` on node `node` with the key; resolves {status, body}. */
async function api(node, method, path, body) {
  const response = await fetch(`${nodesOf(server)[node].url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: await response.json() };
}

/** Reads with `read` until `done` holds for what it read, or TIMEOUT passed; resolves the last read. */
async function eventually(read, done) {
  const started = Date.now();
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() - started > TIMEOUT) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("a message posted through the API reaches every phoenix.js member, in id order with theirs, once", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("api");
  const room = topic.slice("room:".length);
  const nodes = nodesOf(server).length;
  // One member per node (round-robin), so in a cluster the post crosses the bus to reach the others.
  const members = [];
  for (let i = 0; i < Math.max(nodes, 2); i += 1) {
    members.push(await c.joined(topic, { socket: { params: { user: `member${i}` } } }));
  }
  const received = members.map((member) => record(member.channel));
  const { id: first } = await pushOk(members[0].channel, "message:new", { body: "before the backend" });

  const postedOn = nodes - 1;
  const post = { user: "Billing", body: "  invoice 42 is paid  ", client_id: `invoice-42-${room}` };
  const posted = await api(postedOn, "POST", `/api/rooms/${room}/messages`, post);
  assert.equal(posted.status, 201);
  assert.equal(posted.body.id, first + 1, "the room's next id");
  assert.equal(posted.body.duplicate, false);
  for (const payloads of received) {
    const message = await waitForMessage(payloads, posted.body.id);
    assertMessageShape(assert, message);
    assert.deepEqual(message, {
      id: posted.body.id,
      user: "Billing",
      body: "invoice 42 is paid",
      timestamp: posted.body.timestamp,
    });
  }

  const retried = await api(0, "POST", `/api/rooms/${room}/messages`, post);
  assert.equal(retried.status, 200, "a retry with the same client_id answers the stored message");
  assert.equal(retried.body.id, posted.body.id);
  assert.equal(retried.body.duplicate, true);
  const { id: after } = await pushOk(members[1].channel, "message:new", { body: "after the backend" });
  assert.equal(after, posted.body.id + 1, "the retry took no id");
  for (const payloads of received) {
    await waitForMessage(payloads, after);
    assert.deepEqual(
      payloads.map((message) => message.id),
      [first, posted.body.id, after],
      "each member got every message once, in id order",
    );
  }

  const history = await api(0, "GET", `/api/rooms/${room}/messages?limit=2`);
  assert.equal(history.status, 200);
  assert.deepEqual(
    history.body.messages.map((message) => message.id),
    [posted.body.id, after],
  );
});

test("presence through the API lists the room's phoenix.js members on every node, with their metas", async (t) => {
  const c = clientsFor(t, server);
  const topic = uniqueTopic("api-presence");
  const room = topic.slice("room:".length);
  const nodes = nodesOf(server).length;
  const users = Array.from({ length: Math.max(nodes, 2) }, (_, i) => `person${i}`);
  for (const user of users) {
    await c.joined(topic, { socket: { params: { user } } });
  }
  // Read on every node: each must show the members of all of them (a cluster replicates presence through redis).
  for (let node = 0; node < nodes; node += 1) {
    const presence = await eventually(
      async () => (await api(node, "GET", `/api/rooms/${room}/presence`)).body,
      (body) => Object.keys(body).length === users.length,
    );
    assert.deepEqual(Object.keys(presence).sort(), users, `node ${node}`);
    for (const user of users) {
      assert.equal(presence[user].metas.length, 1);
      assert.equal(presence[user].metas[0].typing, false);
      assert.equal(typeof presence[user].metas[0].phx_ref, "string");
    }
  }
});
