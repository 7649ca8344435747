// An HTTP reverse proxy for the long-poll tests: it forwards every request on its own upstream connection to the next
// address in turn (so one long-poll session's GETs and POSTs land on every node of a cluster), and refuses WebSocket
// upgrades (a proxy that lets no WebSocket through).
import http from "node:http";

/** Splits "host:port" (the host may be a bracketed IPv6 address). */
function splitAddr(addr) {
  const colon = addr.lastIndexOf(":");
  return { host: addr.slice(0, colon).replace(/^\[|\]$/g, ""), port: Number(addr.slice(colon + 1)) };
}

// Hop-by-hop headers are the proxy's own business on each side.
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"]);

function endToEnd(headers) {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name.toLowerCase())));
}

/**
 * Starts the proxy on a free loopback port in front of `addrs` ("host:port" strings, or a function returning them so
 * restarted nodes are followed). Each method rotates over the addresses on its own: the n-th GET goes to address
 * n mod len, the n-th request of any other method to (n + 1) mod len, so polls and posts each reach every address
 * and a client's GET/POST rhythm cannot lock them onto a subset; an address that refuses the connection is skipped
 * for the next. Every request gets a fresh upstream connection (no keep-alive).
 * Resolves {addr, url, wsUrl, routes, upgrades, close()}:
 * - `routes` lists every answered request as {method, url, addr, at} (at: Date.now() when its answer began);
 * - `upgrades` counts refused WebSocket upgrade attempts (each answered `400 Bad Request`).
 * A client that aborts a forwarded request aborts the upstream request too, as a direct connection would.
 */
export async function startHttpProxy(addrs) {
  const targets = typeof addrs === "function" ? addrs : () => addrs;
  const routes = [];
  const open = new Set();
  const turns = new Map();
  let upgrades = 0;

  const forward = (req, res, body) => {
    const list = targets();
    const turn = turns.get(req.method) ?? (req.method === "GET" ? 0 : 1);
    turns.set(req.method, turn + 1);
    // An address that refuses the connection (a stopped node) is skipped for the next one, as a health-checking
    // balancer would; any other failure reaches the client as a dropped connection.
    const attempt = (tries) => {
      if (tries >= list.length || res.destroyed) {
        res.destroy();
        return;
      }
      const addr = list[(turn + tries) % list.length];
      const { host, port } = splitAddr(addr);
      const headers = { ...endToEnd(req.headers), host: addr };
      const upstream = http.request(
        { host, port, method: req.method, path: req.url, headers, agent: false },
        (response) => {
          routes.push({ method: req.method, url: req.url, addr, at: Date.now() });
          res.writeHead(response.statusCode, response.statusMessage, endToEnd(response.headers));
          response.pipe(res);
          response.on("error", () => res.destroy());
        },
      );
      const abort = () => {
        if (!res.writableFinished) upstream.destroy();
      };
      upstream.on("error", (error) => {
        res.off("close", abort);
        if (error.code === "ECONNREFUSED") attempt(tries + 1);
        else res.destroy();
      });
      res.on("close", abort);
      upstream.end(body);
    };
    attempt(0);
  };

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      forward(req, res, body);
    });
  });
  server.on("connection", (socket) => {
    open.add(socket);
    socket.on("close", () => open.delete(socket));
  });
  server.on("upgrade", (_req, socket) => {
    upgrades += 1;
    socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const addr = `127.0.0.1:${server.address().port}`;
  return {
    addr,
    url: `http://${addr}`,
    wsUrl: `ws://${addr}`,
    routes,
    get upgrades() {
      return upgrades;
    },
    close() {
      for (const socket of open) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
