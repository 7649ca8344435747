import { startServer } from "../support/server.mjs";
import WebSocket from "ws";
const server = await startServer({ env: { RUST_LOG: "debug" } });
const counts = {};
for (let i = 0; i < 40; i++) {
  const ws = new WebSocket(server.wsUrl + "/socket/websocket?vsn=2.0.0&user=raw");
  await new Promise(r => ws.on("open", r));
  const code = await new Promise(r => {
    ws.on("close", (c, reason) => r(`${c} ${reason}`));
    ws.on("error", (e) => {});
    ws.send(JSON.stringify(["1","1","room:x","message:new",{body: "x".repeat(70*1024)}]));
  });
  counts[code] = (counts[code] || 0) + 1;
}
console.log(counts);
await server.stop({ removeData: true }); process.exit(0);
