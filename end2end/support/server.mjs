// Starts the real server binary on a free loopback port with a fresh data directory, and stops it again.
// Used by the Playwright fixtures and by the phoenix.js conformance suite alike.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Path of the server binary under test: SERVER_BIN, else the release build. */
export function serverBinary() {
  const bin = process.env.SERVER_BIN;
  if (bin) return path.resolve(process.cwd(), bin);
  return path.join(repoRoot, "target", "release", "server");
}

/**
 * Starts a server. `options.dataDir` reuses a data directory (restart tests); `options.addr` pins the address
 * (a restarted server keeps its port so clients reconnect to it).
 */
export async function startServer(options = {}) {
  const dataDir = options.dataDir || mkdtempSync(path.join(tmpdir(), "parley-e2e-"));
  const addr = options.addr || "127.0.0.1:0";
  const child = spawn(serverBinary(), ["--addr", addr, "--data-dir", dataDir, ...(options.args || [])], {
    cwd: repoRoot,
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn,server=info", ...(options.env || {}) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const listening = new Promise((resolve, reject) => {
    const onData = (chunk) => {
      output += chunk.toString();
      const match = output.match(/listening addr=(\S+)/);
      if (match) resolve(match[1]);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`server exited early (${code}):\n${output}`)));
    const timer = setTimeout(() => reject(new Error(`server did not start in 20 s:\n${output}`)), 20_000);
    timer.unref();
  });
  const boundAddr = await listening;
  const exited = new Promise((resolve) => child.on("exit", resolve));
  return {
    addr: boundAddr,
    url: `http://${boundAddr}`,
    wsUrl: `ws://${boundAddr}`,
    dataDir,
    output: () => output,
    /** Graceful stop (SIGTERM), keeping the data directory unless `removeData` is set. */
    async stop({ removeData = false } = {}) {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
      if (removeData) rmSync(dataDir, { recursive: true, force: true });
    },
    /** Hard kill (SIGKILL): a crash. */
    async kill() {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
