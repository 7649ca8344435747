// Signed tokens with the official phoenix client: `params: {token}` and the phoenix 1.8 `authToken` option (sent as
// the `base64url.bearer.phx.…` subprotocol, which the server must answer with `Sec-WebSocket-Protocol: phoenix`).
// Tokens come from the `server token --user` command, signed with the test server's generated secret.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { serverBinary } from "../support/server.mjs";
import { clientsFor, nodesOf, uniqueTopic, pushOk, waitFor, rawHandshake, startTarget } from "./helpers.mjs";

let server;
before(async () => {
  server = await startTarget();
});
after(async () => {
  await server.stop({ removeData: true });
});

/** A token for `user`: signed with the generated secret of the server's data directory, or a cluster's shared one. */
function tokenFor(user) {
  const secret = server.secretKeyBase ? ["--secret-key-base", server.secretKeyBase] : ["--data-dir", server.dataDir];
  return execFileSync(serverBinary(), ["token", "--user", user, ...secret]).toString().trim();
}

test("a token in params fixes the identity", async (t) => {
  const c = clientsFor(t, server);
  const token = tokenFor("Ada");
  const { channel, reply } = await c.joined(uniqueTopic("auth"), { socket: { params: { token, user: "mallory" } } });
  assert.equal(reply.user, "Ada");
  const seen = [];
  channel.on("message:new", (m) => seen.push(m));
  await pushOk(channel, "message:new", { body: "signed" });
  await waitFor(() => seen.length === 1);
  assert.equal(seen[0].user, "Ada");
});

test("the authToken option connects through the subprotocol", async (t) => {
  const c = clientsFor(t, server);
  const token = tokenFor("Grace");
  const socket = await c.connected({ authToken: token });
  assert.equal(socket.conn.protocol, "phoenix", "the server echoed the phoenix subprotocol");
  const channel = socket.channel(uniqueTopic("auth"), {});
  const reply = await new Promise((resolve, reject) => {
    channel.join().receive("ok", resolve).receive("error", reject).receive("timeout", () => reject(new Error("timeout")));
  });
  assert.equal(reply.user, "Grace");
});

test("a tampered or foreign token is refused with 403", async () => {
  const token = tokenFor("Ada");
  const tampered = token.slice(0, -2) + (token.endsWith("AA") ? "BB" : "AA");
  for (const bad of [tampered, "SFMyNTY.garbage.garbage", "nonsense"]) {
    const result = await rawHandshake(server.wsUrl, `vsn=2.0.0&token=${encodeURIComponent(bad)}`);
    assert.equal(result.statusCode, 403, bad);
  }
});

test("every node accepts the same token (one secret key base)", async (t) => {
  const c = clientsFor(t, server);
  const token = tokenFor("Linus");
  const topic = uniqueTopic("auth-nodes");
  for (const [node] of nodesOf(server).entries()) {
    const { reply } = await c.joined(topic, { socket: { node, params: { token, user: "mallory" } } });
    assert.equal(reply.user, "Linus", `node ${node}`);
  }
});
