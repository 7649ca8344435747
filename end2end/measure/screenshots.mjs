// Screenshots of the room as people see it, for a person to look at: light and dark, 1280 and 390 px, three people
// online, grouped messages, a link, a mention, another visited room with unread messages in the sidebar.
//
//   node measure/screenshots.mjs OUT_DIR     (from end2end/, after a release build)
import { chromium } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { startServer } from "../support/server.mjs";

const out = process.argv[2] || "screenshots";
mkdirSync(out, { recursive: true });
const server = await startServer();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});
const ready = (page) => page.waitForFunction(() => document.querySelector("main.room[data-hydrated=true] .banner.hidden"));
async function person(name, room, options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  await page.goto(`${server.url}/${room}?user=${encodeURIComponent(name)}`);
  await ready(page);
  return { context, page };
}
async function say(page, text) {
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
  await page.waitForFunction(() => !document.querySelector(".message.pending"));
}
try {
  const viewer = await person("Ada Lovelace", "other-room");
  await viewer.page.goto(`${server.url}/panther-silk-empire`);
  await ready(viewer.page);
  const grace = await person("Grace", "panther-silk-empire");
  const linus = await person("linus", "panther-silk-empire");
  await say(grace.page, "Morning all! The build is green again.");
  await say(grace.page, "Release notes: https://example.com/releases/1.4 (draft)");
  await say(linus.page, "@Ada Lovelace can you check the numbers before lunch?");
  await say(linus.page, "Also the dashboard looks off on mobile.");
  const other = await person("Grace", "other-room");
  await say(other.page, "anyone here?");
  await say(other.page, "ping");
  await viewer.page.waitForTimeout(500);
  for (const scheme of ["light", "dark"]) {
    for (const width of [1280, 390]) {
      await viewer.page.emulateMedia({ colorScheme: scheme });
      await viewer.page.setViewportSize({ width, height: width > 500 ? 800 : 844 });
      await viewer.page.waitForTimeout(200);
      await viewer.page.screenshot({ path: `${out}/room-${width}-${scheme}.png` });
      if (width < 500) {
        await viewer.page.getByRole("button", { name: /Online/ }).click();
        await viewer.page.waitForTimeout(300);
        await viewer.page.screenshot({ path: `${out}/room-${width}-${scheme}-people.png` });
        await viewer.page.locator("#people").getByRole("button", { name: "Close" }).click();
        await viewer.page.getByRole("button", { name: "Rooms" }).click();
        await viewer.page.waitForTimeout(300);
        await viewer.page.screenshot({ path: `${out}/room-${width}-${scheme}-rooms.png` });
        await viewer.page.keyboard.press("Escape");
      }
    }
  }
} finally {
  await browser.close();
  await server.stop({ removeData: true });
}
