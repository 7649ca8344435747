// The room as a person reads and uses it: day separators and grouped messages, links, mentions, the title's unread
// count and mention notifications while the tab is hidden, copying the link, changing name, the rooms sidebar with
// live unread counts (without appearing online there), keyboard-only use, accessibility (axe) and a 390 px phone.
import AxeBuilder from "@axe-core/playwright";
import { test, expect, waitForHydration } from "../support/fixtures.mjs";
import { serverWithHistory } from "../support/history.mjs";
import { collectErrors, openRoom, send, uniqueRoom } from "../support/room.mjs";

const DAY = 86_400_000;
const ZONE = "America/New_York";

/** Noon in New York `daysAgo` days before today there (whatever the machine's zone, and far from midnight and from a
 * daylight-saving change, so "Yesterday" is yesterday). */
function newYorkNoon(daysAgo) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", { timeZone: ZONE, year: "numeric", month: "numeric", day: "numeric" })
      .formatToParts(new Date())
      .map((p) => [p.type, Number(p.value)]),
  );
  // 17:00 UTC is noon in New York in winter and 13:00 in summer: either way the same date there.
  return Date.UTC(parts.year, parts.month - 1, parts.day - daysAgo, 17);
}

/** Emulates the Page Visibility API: the page believes it is hidden (a background tab) or shown again. */
async function setHidden(page, hidden) {
  await page.evaluate((hidden) => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (hidden ? "hidden" : "visible") });
    document.dispatchEvent(new Event("visibilitychange", { bubbles: true }));
  }, hidden);
}

test("history reads by day, and messages group under their author", async ({ browser }) => {
  const room = uniqueRoom("days");
  const [older, yesterday] = [newYorkNoon(3), newYorkNoon(1)];
  const server = await serverWithHistory(room, [
    { author: "old-timer", body: "from three days ago", at: older },
    { author: "ada", body: "yesterday, first", at: yesterday },
    { author: "ada", body: "yesterday, a minute later", at: yesterday + 60_000 },
    { author: "bob", body: "yesterday, bob", at: yesterday + 120_000 },
  ]);
  try {
    // The server's HTML, before any script: the same rows, dated in UTC (an ISO date for the oldest day).
    const plain = await browser.newContext({ javaScriptEnabled: false });
    const html = await plain.newPage();
    await html.goto(`${server.url}/${room}?user=ada`);
    await expect(html.locator(".message")).toHaveCount(4);
    await expect(html.locator(".day").first()).toHaveText(/^\d{4}-\d\d-\d\d$/);
    await expect(html.locator(".message.continued")).toHaveCount(1);
    await expect(html.locator(".message .body a")).toHaveCount(0);
    await plain.close();

    const zone = { timezoneId: ZONE, locale: "en-US" };
    const context = await browser.newContext(zone);
    const page = await context.newPage();
    const errors = [];
    collectErrors(page, errors);
    await page.goto(`${server.url}/${room}?user=ada`);
    await waitForHydration(page);
    await expect(page.locator(".banner")).toBeHidden();
    const olderLabel = new Date(older).toLocaleDateString("en-US", {
      weekday: "long",
      month: "long",
      day: "numeric",
      timeZone: ZONE,
      ...(new Date(older).getFullYear() !== new Date().getFullYear() ? { year: "numeric" } : {}),
    });
    await expect(page.locator(".day")).toHaveText([olderLabel, "Yesterday"]);

    // Two people chatting today: ada's two messages share one name and time, bob's starts a group of its own.
    const bob = await openRoom(browser, `${server.url}/${room}`, "bob");
    await send(page, "today, first");
    await send(page, "today, second");
    await send(bob.page, "today, bob");
    for (const p of [page, bob.page]) {
      await expect(p.locator(".day")).toHaveText([olderLabel, "Yesterday", "Today"]);
      const line = (text) => p.locator(".message").filter({ hasText: text });
      await expect(line("today, bob")).not.toHaveClass(/continued/);
      await expect(line("today, second")).toHaveClass(/continued/);
      await expect(line("today, second").locator(".author")).toHaveClass(/visually-hidden/);
      await expect(line("today, second").locator(".avatar")).toHaveText("");
      await expect(line("today, first")).not.toHaveClass(/continued/);
      await expect(line("today, first").locator(".author")).toHaveText("ada");
      await expect(line("yesterday, a minute later")).toHaveClass(/continued/);
      await expect(line("yesterday, bob")).not.toHaveClass(/continued/);
      await expect(line("today, first").locator(".avatar")).toHaveText("AD");
    }
    // Times are the reader's: New York's clock, not the server's.
    const expected = new Date(yesterday).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: ZONE });
    await expect(page.locator(".message").filter({ hasText: "yesterday, first" }).locator("time")).toHaveText(expected);
    expect(errors).toEqual([]);
    await context.close();
    await bob.context.close();
  } finally {
    await server.stop({ removeData: true });
  }
});

test("links open in a new tab, and only http(s) text becomes a link", async ({ browser, baseURL }) => {
  const room = `${baseURL}/${uniqueRoom("links")}`;
  const alice = await openRoom(browser, room, "alice");
  await send(alice.page, `see ${baseURL}/healthz, and javascript:alert(1) or <a href="x">not a tag</a>`);
  const link = alice.page.locator(".message .body a");
  await expect(link).toHaveCount(1);
  await expect(link).toHaveText(`${baseURL}/healthz`);
  await expect(link).toHaveAttribute("href", `${baseURL}/healthz`);
  await expect(link).toHaveAttribute("target", "_blank");
  await expect(link).toHaveAttribute("rel", "noopener noreferrer nofollow");
  await expect(alice.page.locator(".message .body")).toContainText('<a href="x">not a tag</a>');
  const [tab] = await Promise.all([alice.context.waitForEvent("page"), link.click()]);
  await tab.waitForLoadState();
  expect(tab.url()).toBe(`${baseURL}/healthz`);
  expect(await tab.evaluate(() => window.opener)).toBeNull();
  await alice.context.close();
});

test("a mention of me stands out; the title counts unread and a mention notifies while the tab is hidden", async ({
  browser,
  baseURL,
}) => {
  const slug = uniqueRoom("mention");
  const context = await browser.newContext({ permissions: ["notifications"] });
  // Records notifications and permission requests, and still calls the browser's own.
  await context.addInitScript(() => {
    window.__notifications = [];
    window.__permissionRequests = 0;
    const Real = window.Notification;
    class Recorded extends Real {
      constructor(title, options) {
        window.__notifications.push({ title, body: options && options.body });
        super(title, options);
      }
      static get permission() {
        return Real.permission;
      }
      static requestPermission(...args) {
        window.__permissionRequests += 1;
        return Real.requestPermission(...args);
      }
    }
    window.Notification = Recorded;
  });
  const page = await context.newPage();
  await page.goto(`${baseURL}/${slug}?user=alice`);
  await waitForHydration(page);
  await expect(page.locator(".banner")).toBeHidden();
  const bob = await openRoom(browser, `${baseURL}/${slug}`, "bob");

  await send(bob.page, "hey @alice, look at this; @bob is me");
  const line = page.locator(".message").filter({ hasText: "look at this" });
  await expect(line).toHaveClass(/mentions-me/);
  await expect(line.locator(".mention.me")).toHaveText("@alice");
  await expect(line.locator(".mention:not(.me)")).toHaveText("@bob");
  await expect(bob.page.locator(".message.mentions-me")).toHaveCount(0);

  // Nothing is asked on load; one click asks.
  expect(await page.evaluate(() => window.__permissionRequests)).toBe(0);
  const alerts = page.getByRole("button", { name: "Alert me of mentions" });
  await alerts.click();
  await expect(page.getByRole("button", { name: "Mention alerts on" })).toHaveAttribute("aria-pressed", "true");
  expect(await page.evaluate(() => window.__permissionRequests)).toBe(1);

  const title = await page.title();
  expect(title).toBe(`${slug} · Parley`);
  await setHidden(page, true);
  await send(bob.page, "one while you are away");
  await send(bob.page, "@alice two, and this one is for you");
  await expect(page).toHaveTitle(`(2) ${title}`);
  const notes = await page.evaluate(() => window.__notifications);
  expect(notes).toEqual([{ title: `bob in #${slug}`, body: "@alice two, and this one is for you" }]);
  await setHidden(page, false);
  await expect(page).toHaveTitle(title);
  // Visible again: nothing counts.
  await send(bob.page, "@alice you are looking now");
  await expect(page.locator(".message").filter({ hasText: "looking now" })).toBeVisible();
  await expect(page).toHaveTitle(title);
  expect(await page.evaluate(() => window.__notifications.length)).toBe(1);
  await context.close();
  await bob.context.close();
});

test("copy link puts the room's address on the clipboard and says so", async ({ browser, baseURL }) => {
  const slug = uniqueRoom("copy");
  const context = await browser.newContext({ permissions: ["clipboard-read", "clipboard-write"] });
  const page = await context.newPage();
  await page.goto(`${baseURL}/${slug}?user=sharer`);
  await waitForHydration(page);
  await page.getByRole("button", { name: "Copy link" }).click();
  await expect(page.getByRole("button", { name: "Link copied ✓" })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(`${baseURL}/${slug}`);
  await expect(page.getByRole("button", { name: "Copy link" })).toBeVisible({ timeout: 5000 });
  await context.close();
});

test("a guest changes name from the room and everyone sees the new name", async ({ browser, baseURL }) => {
  const slug = uniqueRoom("rename");
  const alice = await openRoom(browser, `${baseURL}/${slug}`, "alice");
  const bob = await openRoom(browser, `${baseURL}/${slug}`, "bob");
  await expect(bob.page.locator(".online-list")).toContainText("alice");
  const field = alice.page.getByLabel("New name");
  // Each submission is a navigation back to the room: wait for the new page's URL, then for its hydration.
  const submit = async (name, url) => {
    await field.fill(name);
    await Promise.all([alice.page.waitForURL(url), field.press("Enter")]);
    await waitForHydration(alice.page);
  };

  // The form opens with the focus in it, and Escape closes it.
  await alice.page.getByRole("button", { name: "Change name" }).click();
  await expect(field).toBeFocused();
  await alice.page.keyboard.press("Escape");
  await expect(field).toBeHidden();

  // Refused names say why and change nothing.
  await alice.page.getByRole("button", { name: "Change name" }).click();
  await submit("a<b>", `${baseURL}/${slug}?rename=invalid-name`);
  await expect(alice.page.getByRole("button", { name: "Change name" })).toHaveCount(0);
  await expect(alice.page.getByRole("alert")).toContainText("Names are 1–32 letters");
  await expect(alice.page.locator(".my-name")).toHaveText("alice");
  await expect(field).toBeFocused();

  const owner = await browser.newContext({ baseURL });
  const form = await owner.newPage();
  const account = `Owner${Date.now().toString(36).slice(-5)}`;
  await form.goto("/register");
  await form.getByLabel("Name").fill(account);
  await form.getByLabel("Password").fill("hunter2hunter2");
  await form.getByRole("button", { name: "Create account" }).click();
  await form.waitForURL(`${baseURL}/`);
  await submit(account.toLowerCase(), `${baseURL}/${slug}?rename=name-taken`);
  await expect(alice.page.getByRole("alert")).toContainText("taken");
  await Promise.all([alice.page.waitForURL(`${baseURL}/${slug}`), alice.page.getByRole("link", { name: "Cancel" }).click()]);
  await waitForHydration(alice.page);
  await expect(field).toBeHidden();
  await expect(alice.page.locator(".my-name")).toHaveText("alice");

  // A name valid only before NFKC normalization is refused too (the server's rule normalizes first).
  await alice.page.getByRole("button", { name: "Change name" }).click();
  await submit("ﷺ".repeat(4), `${baseURL}/${slug}?rename=invalid-name`);
  await expect(alice.page.locator(".my-name")).toHaveText("alice");
  await Promise.all([alice.page.waitForURL(`${baseURL}/${slug}`), alice.page.getByRole("link", { name: "Cancel" }).click()]);
  await waitForHydration(alice.page);

  // Accepted: the page comes back under the new name, and everyone sees it instead of the old one.
  await alice.page.getByRole("button", { name: "Change name" }).click();
  await submit("  Alicia  ", `${baseURL}/${slug}`);
  await expect(alice.page.locator(".my-name")).toHaveText("Alicia");
  await expect(bob.page.locator(".online-list")).toContainText("Alicia");
  await expect(bob.page.locator(".online-list")).not.toContainText("alice");
  await expect(bob.page.locator(".online .count")).toHaveText("2");
  await send(alice.page, "still me");
  await expect(bob.page.locator(".message").filter({ hasText: "still me" }).locator(".author")).toHaveText("Alicia");
  // The server remembers the new name for this browser.
  await alice.page.reload();
  await waitForHydration(alice.page);
  await expect(alice.page.locator(".my-name")).toHaveText("Alicia");
  expect(alice.errors).toEqual([]);
  await owner.close();
  await alice.context.close();
  await bob.context.close();
});

test("the sidebar counts another room's messages live without showing me online there", async ({ browser, baseURL }) => {
  const first = uniqueRoom("first");
  const second = uniqueRoom("second");
  const alice = await openRoom(browser, `${baseURL}/${first}`, "alice");
  await send(alice.page, "read this one");
  // Stored (acknowledged) before she leaves: a message still pending when the page goes is not sent at all.
  await expect(alice.page.locator(".message:not(.pending)").filter({ hasText: "read this one" })).toBeVisible();
  await alice.page.goto(`${baseURL}/${second}?user=alice`);
  await waitForHydration(alice.page);
  await expect(alice.page.locator(".banner")).toBeHidden();
  const rooms = alice.page.getByRole("navigation", { name: "Rooms" });
  await expect(rooms.getByRole("link", { name: second })).toHaveAttribute("aria-current", "page");
  const entry = rooms.getByRole("listitem").filter({ has: alice.page.getByRole("link", { name: first }) });
  await expect(entry).toBeVisible();
  await expect(entry.locator(".unread")).toHaveCount(0);

  const bob = await openRoom(browser, `${baseURL}/${first}`, "bob");
  for (const text of ["one", "two", "three"]) await send(bob.page, text);
  await expect(entry.locator(".unread")).toHaveText("3 unread");
  await expect(entry.getByText("unread")).toHaveClass("visually-hidden");
  // Watching the first room does not put alice in it.
  await expect(bob.page.locator(".online .count")).toHaveText("1");
  await expect(bob.page.locator(".online-list")).not.toContainText("alice");

  // Opening it reads it: back in the second room, the first one has nothing unread.
  await entry.getByRole("link").click();
  await waitForHydration(alice.page);
  await expect(alice.page.locator(".message").filter({ hasText: "three" })).toBeVisible();
  await expect(bob.page.locator(".online .count")).toHaveText("2");
  await alice.page.goto(`${baseURL}/${second}?user=alice`);
  await waitForHydration(alice.page);
  await expect(alice.page.locator(".banner")).toBeHidden();
  const again = alice.page.getByRole("navigation", { name: "Rooms" }).getByRole("listitem").filter({ hasText: first });
  await expect(again).toBeVisible();
  await expect(again.locator(".unread")).toHaveCount(0);
  await send(bob.page, "four");
  await expect(again.locator(".unread")).toHaveText("1 unread");

  // Counted by the server when the watch joins: messages sent while alice had no room page open at all.
  await alice.page.goto(`${baseURL}/`);
  await send(bob.page, "five");
  await send(bob.page, "six");
  await alice.page.goto(`${baseURL}/${second}?user=alice`);
  await waitForHydration(alice.page);
  const later = alice.page.getByRole("navigation", { name: "Rooms" }).getByRole("listitem").filter({ hasText: first });
  await expect(later.locator(".unread")).toHaveText("3 unread");

  // A room first seen empty counts what arrives in it later.
  const empty = uniqueRoom("empty");
  await alice.page.goto(`${baseURL}/${empty}?user=alice`);
  await waitForHydration(alice.page);
  await alice.page.goto(`${baseURL}/`);
  const carol = await openRoom(browser, `${baseURL}/${empty}`, "carol");
  await send(carol.page, "first words");
  await alice.page.goto(`${baseURL}/${second}?user=alice`);
  await waitForHydration(alice.page);
  const fresh = alice.page.getByRole("navigation", { name: "Rooms" }).getByRole("listitem").filter({ hasText: empty });
  await expect(fresh.locator(".unread")).toHaveText("1 unread");
  await carol.context.close();
  expect(alice.errors).toEqual([]);
  await alice.context.close();
  await bob.context.close();
});

/** Presses Tab until the focused element matches `selector` (at most 30 times), and checks the focus is visible. */
async function tabTo(page, selector) {
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate((s) => document.activeElement && document.activeElement.matches(s), selector)) {
      const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      expect(outline, `focus on ${selector} is visible`).not.toBe("none");
      return;
    }
  }
  throw new Error(`Tab never reached ${selector}`);
}

test("the whole flow works with the keyboard alone", async ({ browser, baseURL }) => {
  const context = await browser.newContext({ baseURL, permissions: ["clipboard-read", "clipboard-write"] });
  const page = await context.newPage();
  await page.goto("/");
  await waitForHydration(page);
  await tabTo(page, "#display-name");
  await page.keyboard.type("Keys One");
  await tabTo(page, ".random-room button");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/[a-z]+-[a-z]+-[a-z]+\?user=Keys(%20|\+)One$/);
  await waitForHydration(page);
  await expect(page.locator(".banner")).toBeHidden();
  await expect(page.locator(".my-name")).toHaveText("Keys One");

  await tabTo(page, "#message");
  await page.keyboard.type("typed, never clicked");
  await page.keyboard.press("Enter");
  await expect(page.locator(".message:not(.pending)").filter({ hasText: "typed, never clicked" })).toBeVisible();

  await tabTo(page, "#change-name");
  await page.keyboard.press("Enter");
  await expect(page.getByLabel("New name")).toBeFocused();
  await page.keyboard.type("Keys Two");
  const room = page.url().replace(/\?.*$/, "");
  await Promise.all([page.waitForURL(room), page.keyboard.press("Enter")]);
  await waitForHydration(page);
  await expect(page.locator(".my-name")).toHaveText("Keys Two");
  await expect(page.locator(".banner")).toBeHidden();

  await tabTo(page, ".copy-link");
  await page.keyboard.press("Enter");
  await expect(page.locator(".copy-link")).toHaveText("Link copied ✓");
  await context.close();
});

test("home, room, login and register have no serious or critical axe violations, light and dark", async ({
  browser,
  baseURL,
}) => {
  const slug = uniqueRoom("axe");
  const other = await openRoom(browser, `${baseURL}/${slug}`, "bob");
  await send(other.page, `hello @reader, see ${baseURL}/`);
  for (const colorScheme of ["light", "dark"]) {
    const context = await browser.newContext({ baseURL, colorScheme });
    const page = await context.newPage();
    for (const [path, island] of [["/", true], [`/${slug}?user=reader`, true], ["/login", false], ["/register", false]]) {
      await page.goto(path);
      if (island) await waitForHydration(page);
      if (path.startsWith(`/${slug}`)) await expect(page.locator(".message")).toHaveCount(1);
      const results = await new AxeBuilder({ page }).analyze();
      expect(results.passes.length, "axe ran its rules").toBeGreaterThan(10);
      const bad = results.violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
      expect(bad, `${path} in ${colorScheme}`).toEqual([]);
    }
    await context.close();
  }
  await other.context.close();
});

test("on a 390 px phone everyone online is one tap away and the composer fits", async ({ browser, baseURL }) => {
  const slug = uniqueRoom("phone");
  const others = [await openRoom(browser, `${baseURL}/${slug}`, "grace"), await openRoom(browser, `${baseURL}/${slug}`, "linus")];
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await page.goto(`${baseURL}/${slug}?user=ada`);
  await waitForHydration(page);
  const people = page.getByRole("button", { name: /^Online/ });
  await expect(people).toHaveText("Online 3");
  await expect(page.locator("#people")).toBeHidden();
  await people.tap();
  for (const name of ["ada", "grace", "linus"]) {
    await expect(page.locator("#people").getByText(name, { exact: true })).toBeInViewport({ ratio: 1 });
  }
  await page.locator("#people").getByRole("button", { name: "Close" }).tap();
  await expect(page.locator("#people")).toBeHidden();

  // The placeholder is whole: its text is narrower than the box.
  const fits = await page.locator("#message").evaluate((box) => {
    const style = getComputedStyle(box);
    const context = document.createElement("canvas").getContext("2d");
    context.font = `${style.fontSize} ${style.fontFamily}`;
    const room = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return context.measureText(box.placeholder).width <= room;
  });
  expect(fits).toBe(true);
  // Nothing overflows the width of the phone.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);

  await page.getByRole("button", { name: "Rooms" }).tap();
  await expect(page.getByRole("navigation", { name: "Rooms" }).getByRole("link", { name: slug })).toBeInViewport();
  await page.keyboard.press("Escape");
  await expect(page.getByRole("navigation", { name: "Rooms" })).toBeHidden();
  await context.close();
  for (const other of others) await other.context.close();
});
