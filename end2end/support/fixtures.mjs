// Playwright fixtures: one real server per worker, and `baseURL` pointing at it; `cluster`, for the specs that ask for
// it, a two-node cluster per worker (support/cluster.mjs: one PostgreSQL, one redis, two server processes).
import { test as base, expect } from "@playwright/test";
import { startCluster } from "./cluster.mjs";
import { startServer } from "./server.mjs";

export const test = base.extend({
  server: [
    async ({}, use) => {
      const server = await startServer();
      await use(server);
      await server.stop({ removeData: true });
    },
    { scope: "worker" },
  ],
  cluster: [
    async ({}, use) => {
      const cluster = await startCluster({ nodes: 2 });
      await use(cluster);
      await cluster.stop();
    },
    { scope: "worker", timeout: 60_000 },
  ],
  baseURL: async ({ server }, use) => {
    await use(server.url);
  },
});

/** Waits until the WASM bundle has hydrated the server-rendered page. */
export async function waitForHydration(page) {
  await expect(page.locator("[data-hydrated=true]").first()).toBeVisible();
}

export { expect };
