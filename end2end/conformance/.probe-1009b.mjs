import { startServer } from "../support/server.mjs";
import { makeSocket, connectSocket, joinOk, push, recordJoins, waitFor, disconnectSocket } from "./helpers.mjs";
const server = await startServer({ env: { RUST_LOG: "debug,server=trace" } });
for (let i = 0; i < 60; i++) {
  const log = [];
  const t0 = Date.now();
  const socket = makeSocket(server.wsUrl, { params: { user: "verbose" }, logger: (k, m, d) => log.push(`${Date.now()-t0} ${k}: ${m} ${k === "transport" && d ? JSON.stringify(d.code ?? d.message ?? d.type ?? "") : ""}`) });
  await connectSocket(socket);
  const codes = [];
  socket.onClose((e) => codes.push(e.code));
  const channel = socket.channel("room:huge" + i, {});
  const joins = recordJoins(channel);
  await joinOk(channel);
  const huge = push(channel, "message:new", { body: "x".repeat(70 * 1024) }, 1000);
  await waitFor(() => joins.length === 2);
  if (codes.length > 1 || codes[0] !== 1009) console.log(i, codes);
  if (codes.length > 1) console.log(log.filter(l => !l.includes("receive") || true).slice(-25).join("\n"));
  await huge;
  await disconnectSocket(socket);
}
await server.stop({ removeData: true });
console.log(server.output().split("\n").filter(l => /clos|frame|error/i.test(l)).slice(-30).join("\n"));
process.exit(0);
