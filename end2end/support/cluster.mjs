// A throwaway cluster for the end-to-end tests: one PostgreSQL (Debian's binaries, a temp data directory, trust
// authentication on loopback, no fsync), one redis-server (no persistence), and N server nodes started through
// `startServer` with the same database, the same redis and the same secret key base. Nothing needs to run
// beforehand; `stop()` removes everything again. The PostgreSQL part is server/tests/store/postgres.rs in node.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

import { startServer } from "./server.mjs";

const execFileAsync = promisify(execFile);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A port that was free a moment ago (bound on 127.0.0.1:0, then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once 127.0.0.1:`port` accepts a TCP connection; rejects after `ms` (or when `failed()` says so). */
async function waitForPort(port, what, ms = 30_000, failed = () => null) {
  const deadline = Date.now() + ms;
  for (;;) {
    const problem = failed();
    if (problem) throw new Error(`${what} failed to start: ${problem}`);
    const open = await new Promise((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`${what} did not accept connections on port ${port} within ${ms} ms`);
    await sleep(50);
  }
}

/** Collects a child's stdout and stderr; `exitInfo()` describes its exit once it has exited. */
function watchChild(child) {
  const state = { output: "", exit: null };
  const add = (chunk) => {
    state.output += chunk.toString();
    if (state.output.length > 100_000) state.output = state.output.slice(-50_000);
  };
  child.stdout?.on("data", add);
  child.stderr?.on("data", add);
  const exited = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      state.exit = signal ? `killed by ${signal}` : `exit code ${code}`;
      resolve();
    });
    child.on("error", (error) => {
      state.exit = `could not run: ${error.message}`;
      resolve();
    });
  });
  return {
    output: () => state.output,
    exitInfo: () => (state.exit ? `${state.exit}\n${state.output}` : null),
    exited,
  };
}

// Last-resort cleanup when the test process exits without calling stop() (an uncaught error, a killed runner):
// kill what is still running and remove the temp directories. Synchronous, as 'exit' handlers must be.
const leftovers = new Set();
process.on("exit", () => {
  for (const cleanup of leftovers) {
    try {
      cleanup();
    } catch {
      // best effort
    }
  }
});

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/** The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`. */
function postgresBinDir() {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) {
    throw new Error("PostgreSQL is not installed (apt-get install postgresql); the test command installs it");
  }
  const versions = readdirSync(root)
    .filter((version) => existsSync(path.join(root, version, "bin", "initdb")))
    .sort((a, b) => Number.parseFloat(a) - Number.parseFloat(b) || a.localeCompare(b));
  if (versions.length === 0) throw new Error(`no initdb under ${root}/*/bin`);
  return path.join(root, versions.at(-1), "bin");
}

/** [program, args] running a PostgreSQL binary, as the `postgres` user when we are root (initdb refuses root). */
function asPostgres(program, args) {
  return isRoot ? ["runuser", ["-u", "postgres", "--", program, ...args]] : [program, args];
}

/** Sends `signal` to the postmaster named in `dataDir/postmaster.pid` (runuser may sit between us and it). */
function signalPostmaster(dataDir, signal) {
  try {
    const pid = Number.parseInt(readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0], 10);
    if (pid > 0) process.kill(pid, signal);
  } catch {
    // no pid file (not started, or already gone) or no such process
  }
}

/** Waits up to `ms` for `child` (watched) to exit; resolves whether it did. */
async function exitedWithin(watch, ms) {
  let timer;
  const gone = await Promise.race([
    watch.exited.then(() => true),
    new Promise((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return gone;
}

/**
 * Starts a throwaway PostgreSQL server on a free loopback port. Resolves {url, port, dir, kill(), start(), stop()}:
 * `kill()` is an immediate shutdown (SIGQUIT to the postmaster: an outage, the data stays), `start()` starts it again
 * on the same port and data, `stop()` shuts it down for good and removes the data.
 */
export async function startPostgres() {
  const bin = postgresBinDir();
  const dir = mkdtempSync(path.join(tmpdir(), "parley-pg-"));
  const data = path.join(dir, "data");
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  let child;
  let watch;
  const emergency = () => {
    signalPostmaster(data, "SIGQUIT");
    child?.kill("SIGKILL");
    removeDir();
  };
  leftovers.add(emergency);
  const running = () => watch && !watch.exitInfo();
  let port;

  const launch = async () => {
    const [postgres, postgresArgs] = asPostgres(path.join(bin, "postgres"), [
      "-D",
      data,
      "-p",
      String(port),
      "-k",
      dir,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "fsync=off",
      "-c",
      "full_page_writes=off",
      // synchronous_commit stays on: with it off, a commit is acknowledged before its WAL is written, so the outage
      // test's immediate shutdown could lose an acknowledged message (fsync=off only risks an OS crash).
    ]);
    child = spawn(postgres, postgresArgs, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } });
    watch = watchChild(child);
    await waitForPort(port, "postgres", 30_000, watch.exitInfo);
    // Accepting TCP is not quite ready to serve: wait for the log line (the store's connect retries cover the rest).
    const readyBy = Date.now() + 10_000;
    while (!/ready to accept connections/.test(watch.output()) && Date.now() < readyBy && !watch.exitInfo()) {
      await sleep(25);
    }
    await sleep(100);
    if (watch.exitInfo()) throw new Error(`postgres exited: ${watch.exitInfo()}`);
  };

  const shutdown = async () => {
    if (!running()) return;
    // SIGQUIT: immediate shutdown. Then make sure runuser (or postgres itself) is gone.
    signalPostmaster(data, "SIGQUIT");
    if (!(await exitedWithin(watch, 10_000))) {
      child.kill("SIGKILL");
      await watch.exited;
    }
  };

  try {
    if (isRoot) await execFileAsync("chown", ["postgres:postgres", dir]);
    const [initdb, initdbArgs] = asPostgres(path.join(bin, "initdb"), [
      "-A",
      "trust",
      "-U",
      "postgres",
      "--no-sync",
      "-D",
      data,
    ]);
    try {
      await execFileAsync(initdb, initdbArgs, { env: { ...process.env, LC_ALL: "C" } });
    } catch (error) {
      throw new Error(`initdb failed: ${error.message}\n${error.stdout ?? ""}${error.stderr ?? ""}`);
    }
    port = await freePort();
    await launch();
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      port,
      dir,
      output: () => watch.output(),
      /** An outage: immediate shutdown, keeping the data. */
      kill: shutdown,
      /** Back after `kill()`: the same port, the same data. */
      async start() {
        if (!running()) await launch();
      },
      async stop() {
        await shutdown();
        removeDir();
        leftovers.delete(emergency);
      },
    };
  } catch (error) {
    emergency();
    leftovers.delete(emergency);
    throw error;
  }
}

/**
 * Starts a throwaway redis-server (no persistence) on a free loopback port. Resolves {url, port, kill(), start(),
 * stop()}: `kill()` is SIGKILL (an outage; everything in it is lost), `start()` starts an empty one on the same port.
 */
export async function startRedis() {
  const dir = mkdtempSync(path.join(tmpdir(), "parley-redis-"));
  const port = await freePort();
  let child;
  let watch;
  const emergency = () => {
    child?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  leftovers.add(emergency);
  const running = () => watch && !watch.exitInfo();
  const launch = async () => {
    child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    watch = watchChild(child);
    await waitForPort(
      port,
      "redis-server (apt-get install redis-server; the test command installs it)",
      20_000,
      watch.exitInfo,
    );
  };
  const kill = async () => {
    if (!running()) return;
    child.kill("SIGKILL");
    await watch.exited;
  };
  try {
    await launch();
    return {
      url: `redis://127.0.0.1:${port}`,
      port,
      output: () => watch.output(),
      /** An outage: SIGKILL, everything in it is gone. */
      kill,
      /** Back after `kill()`, empty, on the same port. */
      async start() {
        if (!running()) await launch();
      },
      async stop() {
        await kill();
        rmSync(dir, { recursive: true, force: true });
        leftovers.delete(emergency);
      },
    };
  } catch (error) {
    emergency();
    leftovers.delete(emergency);
    throw error;
  }
}

/** The node id a server logged with its `listening addr=… node=…` line, if any. */
function loggedNodeId(output) {
  return output.match(/listening addr=\S+.*?\bnode=("?)([^"\s]+)\1/)?.[2] ?? null;
}

/** Stops a node gracefully, or kills it if it has not exited after `ms`; rejects in that case (a hung drain). */
async function stopNode(node, ms = 15_000) {
  let timer;
  const hung = new Promise((resolve) => {
    timer = setTimeout(() => resolve(true), ms);
  });
  const stopped = node.stop({ removeData: true }).then(() => false);
  const didHang = await Promise.race([stopped, hung]);
  clearTimeout(timer);
  if (didHang) {
    await node.kill();
    throw new Error(`node ${node.addr} did not exit within ${ms} ms of SIGTERM; killed. Its output:\n${node.output()}`);
  }
}

/**
 * Starts a cluster: one PostgreSQL, one redis and `nodes` server nodes (started at once, so they also race for the
 * migrations) sharing both and one secret key base. `args` are extra server flags for every node; `addr` gives every
 * node the same address (with `--reuse-port` in `args`), by default each gets a free port.
 *
 * Resolves {nodes, postgres, redis, secretKeyBase, nodeArgs, restart(i), stop()}. Each node is what `startServer`
 * returns plus `id` (from its log line) and `index`. `restart(i, {crash})` stops (or, with crash, kills) node i and
 * starts it again on the same address with the same data directory; `nodes[i]` is then the new process.
 */
export async function startCluster({ nodes: count = 3, addr, args = [], env = {} } = {}) {
  const started = [];
  let postgres;
  let redis;
  const cleanup = async () => {
    const results = await Promise.allSettled(started.map((node) => stopNode(node)));
    await Promise.allSettled([redis?.stop(), postgres?.stop()]);
    const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason.message);
    if (failures.length) throw new Error(failures.join("\n"));
  };
  try {
    [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
    const secretKeyBase = randomBytes(48).toString("hex");
    const nodeArgs = [
      "--database-url",
      postgres.url,
      "--redis-url",
      redis.url,
      "--secret-key-base",
      secretKeyBase,
      ...args,
    ];
    const launch = async (index, options = {}) => {
      const node = await startServer({ args: nodeArgs, env, addr, ...options });
      started.push(node);
      node.index = index;
      node.id = loggedNodeId(node.output());
      return node;
    };
    const launches = await Promise.allSettled(Array.from({ length: count }, (_, index) => launch(index)));
    const failed = launches.find((result) => result.status === "rejected");
    if (failed) throw failed.reason;
    const nodes = launches.map((result) => result.value);
    const cluster = {
      nodes,
      postgres,
      redis,
      secretKeyBase,
      nodeArgs,
      /** Node i stopped (SIGTERM) or crashed (SIGKILL, `crash: true`) and started again on the same address. */
      async restart(index, { crash = false } = {}) {
        const old = nodes[index];
        if (crash) await old.kill();
        else await old.stop();
        nodes[index] = await launch(index, { addr: old.addr, dataDir: old.dataDir });
        started.splice(started.indexOf(old), 1);
        return nodes[index];
      },
      /** Starts node i again on its address after it was stopped or killed by hand. */
      async revive(index) {
        const old = nodes[index];
        nodes[index] = await launch(index, { addr: old.addr, dataDir: old.dataDir });
        started.splice(started.indexOf(old), 1);
        return nodes[index];
      },
      async stop() {
        await cleanup();
      },
    };
    return cluster;
  } catch (error) {
    await cleanup().catch(() => {});
    throw error;
  }
}

/**
 * A TCP load balancer on a free loopback port in front of `addrs` ("host:port" strings, or a function returning them
 * so restarted nodes are followed). Each new connection goes to the next address in turn; an address that refuses
 * the connection (a dead node) is skipped for the next one, as a health-checking balancer would. Resolves
 * {addr, url, wsUrl, routes, close()}: `routes` lists the address each accepted connection was sent to, in order.
 */
export async function startBalancer(addrs) {
  const targets = typeof addrs === "function" ? addrs : () => addrs;
  const routes = [];
  const open = new Set();
  let turn = 0;
  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    open.add(client);
    client.on("close", () => open.delete(client));
    client.on("error", () => client.destroy());
    const list = targets();
    const first = turn++;
    const attempt = (tries) => {
      if (tries >= list.length || client.destroyed) {
        client.destroy();
        return;
      }
      const addr = list[(first + tries) % list.length];
      const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
      const upstream = net.connect({ host, port });
      let connected = false;
      open.add(upstream);
      upstream.on("close", () => {
        open.delete(upstream);
        if (connected) client.destroy();
      });
      upstream.on("error", () => {
        if (!connected) attempt(tries + 1);
        upstream.destroy();
      });
      upstream.on("connect", () => {
        if (client.destroyed) {
          upstream.destroy();
          return;
        }
        connected = true;
        routes.push(addr);
        client.on("close", () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    attempt(0);
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
    close() {
      for (const socket of open) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
