// The chat room as people use it: two browser contexts in one room, presence, live messages, history, restarts.
import { test, expect, waitForHydration } from "../support/fixtures.mjs";
import { startServer } from "../support/server.mjs";

const uniqueRoom = (name) => `${name}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;

async function openRoom(browser, url, user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(`${url}${user ? `?user=${encodeURIComponent(user)}` : ""}`);
  await waitForHydration(page);
  await expect(page.locator(".banner")).toBeHidden();
  return { context, page, errors };
}

async function send(page, text) {
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
}

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
  await expect(alice.page.locator(".where")).toHaveText("Currently chatting in " + room.split("/").pop() + " as alice");

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
