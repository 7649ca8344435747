// Signed tokens with the official phoenix client: `params: {token}` and the phoenix 1.8 `authToken` option (sent as
// the `base64url.bearer.phx.…` subprotocol, which the server must answer with `Sec-WebSocket-Protocol: phoenix`).
// Tokens come from the `server token --user` command, signed with the test server's generated secret.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { startServer, serverBinary } from "../support/server.mjs";
import { clientsFor, uniqueTopic, pushOk, waitFor, rawHandshake } from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server.stop({ removeData: true });
});

function tokenFor(user) {
  return execFileSync(serverBinary(), ["token", "--user", user, "--data-dir", server.dataDir]).toString().trim();
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
