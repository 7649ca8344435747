// Playwright fixtures: one real server per worker, and `baseURL` pointing at it.
import { test as base, expect } from "@playwright/test";
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
  baseURL: async ({ server }, use) => {
    await use(server.url);
  },
});

/** Waits until the WASM bundle has hydrated the server-rendered page. */
export async function waitForHydration(page) {
  await expect(page.locator("[data-hydrated=true]").first()).toBeVisible();
}

export { expect };
