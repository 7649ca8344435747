// Chat where WebSockets are blocked: a browser without a WebSocket at all, and one behind a "proxy" that accepts the
// upgrade and then passes nothing (the case only the heartbeat health check catches). Both fall back to long poll,
// see each other online, chat both ways, and are told nothing alarming; the fallback is remembered for the tab.
import { test, expect, waitForHydration } from "../support/fixtures.mjs";
import { collectErrors, send, uniqueRoom } from "../support/room.mjs";

/** A page in a fresh context, with `block` applied to the context before anything loads. */
async function blockedPage(browser, block) {
  const context = await browser.newContext();
  await block(context);
  const page = await context.newPage();
  const errors = [];
  collectErrors(page, errors);
  return { context, page, errors };
}

/** The page's WebSocket constructor is gone, as in a locked-down embedded browser. */
const noWebSocket = (context) => context.addInitScript(() => delete window.WebSocket);

/** Every WebSocket "opens" but reaches nothing: a middlebox that swallows the traffic. Records the attempts. */
const swallowedWebSocket = (attempts) => (context) =>
  context.routeWebSocket(/\/socket\/websocket/, () => {
    attempts.push(Date.now());
  });

test("with WebSockets blocked, people still chat over long poll", async ({ browser, baseURL }) => {
  const room = uniqueRoom("blocked");
  const attempts = [];
  const alice = await blockedPage(browser, noWebSocket);
  const bob = await blockedPage(browser, swallowedWebSocket(attempts));
  const longPolls = [];
  bob.page.on("request", (request) => {
    if (request.url().includes("/socket/longpoll")) longPolls.push(request.method());
  });

  for (const [person, name] of [
    [alice, "alice"],
    [bob, "bob"],
  ]) {
    await person.page.goto(`${baseURL}/${room}?user=${name}`);
    await waitForHydration(person.page);
  }
  // Bob's WebSocket opened (to nothing) and never answered a heartbeat: after 2.5 s the page switched.
  for (const { page } of [alice, bob]) {
    await expect(page.locator("main.room")).toHaveAttribute("data-transport", "longpoll", { timeout: 15_000 });
    await expect(page.locator(".online .count")).toHaveText("2");
  }
  expect(attempts.length).toBeGreaterThan(0);
  expect(longPolls).toContain("GET");

  await send(alice.page, "hello from behind the firewall");
  await expect(bob.page.locator(".message").filter({ hasText: "hello from behind the firewall" })).toBeVisible();
  await send(bob.page, "and from behind the proxy");
  const mine = alice.page.locator(".message").filter({ hasText: "and from behind the proxy" });
  await expect(mine.locator(".author")).toHaveText("bob");
  await expect(bob.page.locator(".message.pending")).toHaveCount(0);
  expect(longPolls).toContain("POST");

  // Nothing alarming: no connection banner, no error, no transport jargon in the page's text.
  for (const { page } of [alice, bob]) {
    await expect(page.locator(".banner")).toBeHidden();
    await expect(page.locator("main.room")).not.toContainText(/long.?poll|websocket/i);
  }

  // The fallback is remembered for the tab's session: a reload goes straight to long poll, without a WebSocket try.
  expect(await bob.page.evaluate(() => sessionStorage.getItem("phx:fallback:LongPoll"))).toBe("true");
  const before = attempts.length;
  await bob.page.reload();
  await waitForHydration(bob.page);
  await expect(bob.page.locator("main.room")).toHaveAttribute("data-transport", "longpoll");
  await expect(bob.page.locator(".online .count")).toHaveText("2");
  expect(attempts.length).toBe(before);
  await send(bob.page, "after the reload");
  await expect(alice.page.locator(".message").filter({ hasText: "after the reload" })).toBeVisible();

  // Alice leaves; bob's long-poll session sees her go.
  await alice.context.close();
  await expect(bob.page.locator(".online .count")).toHaveText("1", { timeout: 30_000 });
  expect(bob.errors).toEqual([]);
  expect(alice.errors).toEqual([]);
  await bob.context.close();
});

test("where WebSockets work, the room uses them", async ({ browser, baseURL }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${baseURL}/${uniqueRoom("direct")}?user=carol`);
  await waitForHydration(page);
  await expect(page.locator("main.room")).toHaveAttribute("data-transport", "websocket");
  // Healthy for longer than the fallback window: no switch.
  await page.waitForTimeout(3_000);
  await expect(page.locator("main.room")).toHaveAttribute("data-transport", "websocket");
  expect(await page.evaluate(() => sessionStorage.getItem("phx:fallback:LongPoll"))).toBeNull();
  await context.close();
});
