// The chat room as people use it: two browser contexts in one room, presence, live messages, history, restarts.
import { test, expect, waitForHydration } from "../support/fixtures.mjs";
import { openRoom, send, uniqueRoom } from "../support/room.mjs";
import { startServer } from "../support/server.mjs";

test("two people see each other online and chat live", async ({ browser, baseURL }) => {
  const room = `${baseURL}/${uniqueRoom("duo")}`;
  const alice = await openRoom(browser, room, "alice");
  const bob = await openRoom(browser, room, "bob");
  for (const { page } of [alice, bob]) {
    await expect(page.locator(".online-list li")).toHaveCount(2);
    await expect(page.locator(".online .count")).toHaveText("2");
    await expect(page.locator(".online-list")).toContainText("alice");
    await expect(page.locator(".online-list")).toContainText("bob");
    await expect(page.locator(".online-list .since").first()).toContainText(/online since \d\d:\d\d/);
  }
  await expect(alice.page.getByRole("heading", { level: 1 })).toHaveText("#" + room.split("/").pop());
  await expect(alice.page.locator(".my-name")).toHaveText("alice");

  await send(alice.page, "hello bob");
  await expect(alice.page.getByLabel("Message", { exact: true })).toHaveValue("", { timeout: 2000 });
  const line = bob.page.locator(".message").filter({ hasText: "hello bob" });
  await expect(line).toBeVisible();
  await expect(line.locator(".author")).toHaveText("alice");
  await expect(line.locator("time")).toHaveText(/^\d\d:\d\d$/);
  await expect(alice.page.locator(".message").filter({ hasText: "hello bob" })).toHaveCount(1);
  await expect(alice.page.locator(".message.pending")).toHaveCount(0);

  // Shift+Enter makes a new line instead of sending.
  const box = bob.page.getByLabel("Message", { exact: true });
  await box.fill("line one");
  await box.press("Shift+Enter");
  await box.type("line two");
  await expect(box).toHaveValue("line one\nline two");
  await box.press("Enter");
  await expect(alice.page.locator(".message .body").filter({ hasText: "line two" })).toHaveText("line one\nline two");

  expect(alice.errors).toEqual([]);
  expect(bob.errors).toEqual([]);
  await alice.context.close();
  await bob.context.close();
});

test("empty and whitespace-only messages are not sent", async ({ browser, baseURL }) => {
  const room = `${baseURL}/${uniqueRoom("empty")}`;
  const alice = await openRoom(browser, room, "alice");
  await send(alice.page, "   ");
  await alice.page.getByLabel("Message", { exact: true }).press("Enter");
  await send(alice.page, "real one");
  await expect(alice.page.locator(".message")).toHaveCount(1);
  await expect(alice.page.locator(".message .body")).toHaveText("real one");
  await alice.context.close();
});

test("an HTML body is shown as text and never runs", async ({ browser, baseURL }) => {
  const room = `${baseURL}/${uniqueRoom("xss")}`;
  const alice = await openRoom(browser, room, "alice");
  const bob = await openRoom(browser, room, "bob");
  let dialogs = 0;
  bob.page.on("dialog", async (dialog) => {
    dialogs += 1;
    await dialog.dismiss();
  });
  const evil = `<img src=x onerror="alert(1)"><script>alert(2)</script><b>bold</b>`;
  await send(alice.page, evil);
  await expect(bob.page.locator(".message .body")).toHaveText(evil);
  await expect(bob.page.locator(".message .body b")).toHaveCount(0);
  await expect(bob.page.locator(".message .body img")).toHaveCount(0);
  // Also after a reload, when the server renders it.
  await bob.page.reload();
  await waitForHydration(bob.page);
  await expect(bob.page.locator(".message .body")).toHaveText(evil);
  await expect(bob.page.locator(".message .body img")).toHaveCount(0);
  expect(dialogs).toBe(0);
  await alice.context.close();
  await bob.context.close();
});

test("reload shows the history, rendered by the server", async ({ browser, baseURL }) => {
  const room = `${baseURL}/${uniqueRoom("history")}`;
  const alice = await openRoom(browser, room, "alice");
  for (const text of ["first", "second", "third"]) {
    await send(alice.page, text);
    await expect(alice.page.locator(".message").filter({ hasText: text })).toBeVisible();
  }
  await expect(alice.page.locator(".message.pending")).toHaveCount(0);
  // Without JavaScript: the history is in the server's HTML.
  const plain = await browser.newContext({ javaScriptEnabled: false });
  const page = await plain.newPage();
  await page.goto(room);
  await expect(page.locator(".message .body")).toHaveText(["first", "second", "third"]);
  await plain.close();
  await alice.page.reload();
  await waitForHydration(alice.page);
  await expect(alice.page.locator(".message .body")).toHaveText(["first", "second", "third"]);
  await alice.context.close();
});

test("someone who closes the page leaves who's online", async ({ browser, baseURL }) => {
  const room = `${baseURL}/${uniqueRoom("leave")}`;
  const alice = await openRoom(browser, room, "alice");
  const bob = await openRoom(browser, room, "bob");
  await expect(alice.page.locator(".online-list li")).toHaveCount(2);
  await bob.context.close();
  await expect(alice.page.locator(".online-list li")).toHaveCount(1);
  await expect(alice.page.locator(".online-list")).not.toContainText("bob");
  await alice.context.close();
});

test("typing shows an indicator to the others", async ({ browser, baseURL }) => {
  const room = `${baseURL}/${uniqueRoom("typing")}`;
  const alice = await openRoom(browser, room, "alice");
  const bob = await openRoom(browser, room, "bob");
  await alice.page.getByLabel("Message", { exact: true }).type("hel");
  await expect(bob.page.locator(".typing")).toHaveText("alice is typing…");
  await expect(alice.page.locator(".typing")).toHaveText("");
  await alice.page.getByLabel("Message", { exact: true }).press("Enter");
  await expect(bob.page.locator(".typing")).toHaveText("");
  await alice.context.close();
  await bob.context.close();
});

test("the random-room button lands on a new three-word room", async ({ page }) => {
  await page.goto("/");
  await waitForHydration(page);
  await page.getByLabel("Your name (optional)").fill("Rita");
  await page.getByRole("button", { name: "Create a random room" }).click();
  await page.waitForURL(/\/[a-z]+-[a-z]+-[a-z]+\?user=Rita$/);
  await waitForHydration(page);
  await expect(page.locator(".my-name")).toHaveText("Rita");
  const slug = new URL(page.url()).pathname.slice(1);
  await expect(page.locator(".room-name")).toHaveText(slug);
});

test("?user= sets the name, and without it a random name is used", async ({ browser, baseURL }) => {
  const room = `${baseURL}/${uniqueRoom("names")}`;
  const named = await openRoom(browser, room, "Zoë K");
  await expect(named.page.locator(".my-name")).toHaveText("Zoë K");
  await expect(named.page.locator(".online-list")).toContainText("Zoë K");
  const guest = await openRoom(browser, room, null);
  const name = await guest.page.locator(".my-name").textContent();
  expect(name).toMatch(/^[a-z]+-[a-z]+$/);
  await expect(named.page.locator(".online-list")).toContainText(name);
  await named.context.close();
  await guest.context.close();
});

test("a server restart shows the banner, then messages sent meanwhile appear exactly once", async ({ browser }) => {
  let server = await startServer();
  const room = `${server.url}/${uniqueRoom("restart")}`;
  const alice = await openRoom(browser, room, "alice");
  const bob = await openRoom(browser, room, "bob");
  await send(alice.page, "before");
  await expect(bob.page.locator(".message").filter({ hasText: "before" })).toBeVisible();

  const { addr, dataDir } = server;
  await server.stop();
  await expect(alice.page.locator(".banner")).toBeVisible();
  await expect(alice.page.locator(".banner")).toContainText("Reconnecting");
  // Sent while the server is down: queued, delivered after the reconnect.
  await send(alice.page, "during the outage");
  await expect(alice.page.locator(".message.pending")).toHaveCount(1);
  server = await startServer({ addr, dataDir });
  await expect(alice.page.locator(".banner")).toBeHidden({ timeout: 15_000 });
  await expect(bob.page.locator(".banner")).toBeHidden({ timeout: 15_000 });
  await expect(bob.page.locator(".message").filter({ hasText: "during the outage" })).toHaveCount(1);
  await expect(alice.page.locator(".message").filter({ hasText: "during the outage" })).toHaveCount(1);
  await expect(alice.page.locator(".message.pending")).toHaveCount(0);
  await send(bob.page, "after");
  await expect(alice.page.locator(".message .body")).toHaveText(["before", "during the outage", "after"]);
  await expect(bob.page.locator(".message .body")).toHaveText(["before", "during the outage", "after"]);
  await alice.context.close();
  await bob.context.close();
  await server.stop({ removeData: true });
});

/** Sends `count` messages into `slug` over raw sockets (20 per socket: the server's per-socket rate limit). */
async function seed(server, slug, count) {
  const { default: WebSocket } = await import("ws");
  let sent = 0;
  while (sent < count) {
    const batch = Math.min(20, count - sent);
    const ws = new WebSocket(`${server.wsUrl}/socket/websocket?vsn=2.0.0&user=seeder`);
    await new Promise((resolve) => ws.on("open", resolve));
    ws.send(JSON.stringify(["1", "1", `room:${slug}`, "phx_join", {}]));
    let acked = 0;
    await new Promise((resolve) => {
      ws.on("message", (data) => {
        const [, ref, , event] = JSON.parse(data.toString());
        if (event === "phx_reply" && ref !== "1" && ++acked === batch) resolve();
      });
      for (let i = 0; i < batch; i++) {
        ws.send(JSON.stringify(["1", String(i + 2), `room:${slug}`, "message:new", { body: `seed ${sent + i + 1}` }]));
      }
    });
    ws.close();
    sent += batch;
  }
}

/** A fresh room with `count` messages, open as alice, showing the latest page of 50. */
async function openSeededRoom(browser, server, name, count) {
  const slug = uniqueRoom(name);
  await seed(server, slug, count);
  const alice = await openRoom(browser, `${server.url}/${slug}`, "alice");
  await expect(alice.page.locator(".message")).toHaveCount(50);
  return { slug, alice, list: alice.page.locator(".messages") };
}

test("scrolling up loads older messages, and new ones show a pill instead of yanking the view", async ({ browser, server }) => {
  const { slug, alice, list } = await openSeededRoom(browser, server, "scroll", 70);
  await expect(alice.page.locator(".message .body").last()).toHaveText("seed 70");
  // Stuck to the bottom on load.
  await expect.poll(() => list.evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight)).toBeLessThan(50);
  await list.evaluate((e) => (e.scrollTop = 0));
  await expect(alice.page.locator(".message")).toHaveCount(70);
  await expect(alice.page.locator(".message .body").first()).toHaveText("seed 1");
  await expect(alice.page.locator(".older-hint")).toHaveCount(0);
  // Scrolled up: a new message does not move the view; a pill offers to jump.
  await list.evaluate((e) => (e.scrollTop = 0));
  await seed(server, slug, 1);
  await expect(alice.page.locator(".new-pill")).toHaveText("1 new message ↓");
  expect(await list.evaluate((e) => e.scrollTop)).toBeLessThan(50);
  await alice.page.locator(".new-pill").click();
  await expect(alice.page.locator(".new-pill")).toHaveCount(0);
  await expect.poll(() => list.evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight)).toBeLessThan(50);
  await alice.context.close();
});

test("loading older messages keeps the reader's place", async ({ browser, server }) => {
  const { alice, list } = await openSeededRoom(browser, server, "anchor", 120);
  // Where "seed 71", the oldest message shown, sits in the list's viewport (px from its top edge).
  const offsetOf71 = () =>
    list.evaluate((e) => {
      const line = [...e.querySelectorAll(".message")].find((m) => m.querySelector(".body").textContent === "seed 71");
      return line.getBoundingClientRect().top - e.getBoundingClientRect().top;
    });
  await list.evaluate((e) => (e.scrollTop = 0));
  await expect(alice.page.locator(".message")).toHaveCount(100);
  // The page of 50 arrived above, yet "seed 71" is still in view near the top instead of pushed 50 lines down.
  await expect.poll(offsetOf71).toBeLessThan(200);
  expect(await offsetOf71()).toBeGreaterThan(-50);
  expect(await list.evaluate((e) => e.scrollTop)).toBeGreaterThan(500);
  await alice.context.close();
});

test("a refused message shows as not sent and retrying delivers it once", async ({ browser, baseURL }) => {
  test.setTimeout(40_000);
  const room = `${baseURL}/${uniqueRoom("retry")}`;
  const alice = await openRoom(browser, room, "alice");
  for (let i = 1; i <= 20; i++) await send(alice.page, `m${i}`);
  await expect(alice.page.locator(".message:not(.pending):not(.failed)")).toHaveCount(20);
  await send(alice.page, "one too many");
  const failed = alice.page.locator(".message.failed");
  await expect(failed).toHaveCount(1);
  await expect(failed.locator(".delivery")).toHaveText("not sent: rate limited");
  // The rate limit window is 10 s; then the retry goes through, once.
  await alice.page.waitForTimeout(10_500);
  await failed.getByRole("button", { name: "Retry" }).click();
  await expect(alice.page.locator(".message.failed")).toHaveCount(0);
  await expect(alice.page.locator(".message").filter({ hasText: "one too many" })).toHaveCount(1);
  await alice.page.reload();
  await waitForHydration(alice.page);
  await expect(alice.page.locator(".message").filter({ hasText: "one too many" })).toHaveCount(1);
  await alice.context.close();
});
