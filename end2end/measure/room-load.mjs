// Measures the room page as a browser meets it: bytes transferred per resource (Performance API `encodedBodySize`,
// what Chromium downloaded, brotli when offered) and the time from navigation to "joined and rendered" (the island is
// hydrated, the join answered and the connection banner gone), over fresh browser contexts on one real server.
//
//   node measure/room-load.mjs [runs]        (from end2end/, after a release build)
//
// Prints one JSON object: per-resource sizes, the room page's total and the joined-and-rendered times (ms, sorted).
import { chromium } from "@playwright/test";
import { startServer } from "../support/server.mjs";

const runs = Number(process.argv[2] || 15);

// Records, in the page, the first moment the room is hydrated, joined and its banner hidden.
const watchJoined = () => {
  const check = () => {
    if (window.__joinedAt) return;
    const hydrated = document.querySelector("main.room[data-hydrated=true]");
    if (hydrated && !window.__hydratedAt) window.__hydratedAt = performance.now();
    const banner = document.querySelector(".banner");
    if (hydrated && banner && banner.classList.contains("hidden")) {
      window.__joinedAt = performance.now();
      performance.mark("parley:joined-and-rendered");
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true });
};

const server = await startServer();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  // Some history, so the page renders messages as a person would meet it.
  const seed = await browser.newContext();
  const seedPage = await seed.newPage();
  await seedPage.goto(`${server.url}/measured-room?user=Seeder`);
  await seedPage.waitForFunction(() => document.querySelector(".banner.hidden"));
  for (let i = 0; i < 20; i++) {
    await seedPage.getByLabel("Message", { exact: true }).fill(`message ${i} with https://example.com/${i} @Reader`);
    await seedPage.getByLabel("Message", { exact: true }).press("Enter");
  }
  await seedPage.waitForFunction(() => document.querySelectorAll(".message:not(.pending)").length >= 20);
  await seed.close();

  const times = [];
  const phases = [];
  let resources = null;
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext();
    await context.addInitScript(watchJoined);
    const page = await context.newPage();
    await page.goto(`${server.url}/measured-room?user=Reader${i}`);
    await page.waitForFunction(() => window.__joinedAt, null, { timeout: 20_000 });
    times.push(await page.evaluate(() => window.__joinedAt));
    phases.push(
      await page.evaluate(() => {
        const wasm = performance.getEntriesByType("resource").find((e) => e.name.endsWith(".wasm"));
        return { wasm: wasm ? wasm.responseEnd : 0, hydrated: window.__hydratedAt, joined: window.__joinedAt };
      }),
    );
    if (!resources) {
      resources = await page.evaluate(() => [
        ...performance.getEntriesByType("navigation").map((e) => ({ name: "document", bytes: e.encodedBodySize })),
        ...performance.getEntriesByType("resource").map((e) => ({ name: new URL(e.name).pathname, bytes: e.encodedBodySize })),
      ]);
    }
    await context.close();
  }
  times.sort((a, b) => a - b);
  const pick = (q) => Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))]);
  const assets = resources.filter((r) => r.name.startsWith("/pkg/"));
  console.log(
    JSON.stringify(
      {
        runs,
        resources,
        pkg_bytes: assets.reduce((sum, r) => sum + r.bytes, 0),
        total_bytes: resources.reduce((sum, r) => sum + r.bytes, 0),
        joined_ms: { p50: pick(0.5), p90: pick(0.9), min: Math.round(times[0]), max: Math.round(times.at(-1)) },
        // Medians of when the WASM finished downloading, the island was hydrated, and the room was joined and rendered.
        phases_p50_ms: Object.fromEntries(
          ["wasm", "hydrated", "joined"].map((k) => {
            const sorted = phases.map((p) => p[k]).sort((a, b) => a - b);
            return [k, Math.round(sorted[Math.floor(sorted.length / 2)])];
          }),
        ),
      },
      null,
      2,
    ),
  );
} finally {
  await browser.close();
  await server.stop({ removeData: true });
}
