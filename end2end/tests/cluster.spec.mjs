// The chat room on a two-node cluster (one PostgreSQL, one redis): two people whose pages were served by, and whose
// sockets are connected to, different server processes. What they see must be what they would see on one server.
import { test, expect, waitForHydration } from "../support/fixtures.mjs";
import { openRoom, send, uniqueRoom } from "../support/room.mjs";

const unique = (prefix) => `${prefix}${Date.now().toString(36).slice(-4)}${Math.floor(Math.random() * 1e4)}`;

async function expectOnline(page, names) {
  await expect(page.locator(".online-list li")).toHaveCount(names.length);
  await expect(page.locator(".online .count")).toHaveText(String(names.length));
  for (const name of names) await expect(page.locator(".online-list")).toContainText(name);
}

test("two people on two nodes see each other online, chat live and see each other typing", async ({ browser, cluster }) => {
  const [nodeA, nodeB] = cluster.nodes;
  const slug = uniqueRoom("nodes");
  const ann = await openRoom(browser, `${nodeA.url}/${slug}`, "Ann");
  const ben = await openRoom(browser, `${nodeB.url}/${slug}`, "Ben");
  for (const { page } of [ann, ben]) await expectOnline(page, ["Ann", "Ben"]);

  // Messages both ways, each shown once, delivered (not pending) on the sender's page.
  await send(ann.page, "hello from node A");
  const atBen = ben.page.locator(".message").filter({ hasText: "hello from node A" });
  await expect(atBen).toHaveCount(1);
  await expect(atBen.locator(".author")).toHaveText("Ann");
  await send(ben.page, "hi from node B");
  const atAnn = ann.page.locator(".message").filter({ hasText: "hi from node B" });
  await expect(atAnn).toHaveCount(1);
  await expect(atAnn.locator(".author")).toHaveText("Ben");
  for (const { page } of [ann, ben]) {
    await expect(page.locator(".message .body")).toHaveText(["hello from node A", "hi from node B"]);
    await expect(page.locator(".message.pending")).toHaveCount(0);
  }

  // Typing travels between the nodes, both ways, and stops when the message is sent.
  await ben.page.getByLabel("Message", { exact: true }).type("hel");
  await expect(ann.page.locator(".typing")).toHaveText("Ben is typing…");
  await expect(ben.page.locator(".typing")).toHaveText("");
  await ben.page.getByLabel("Message", { exact: true }).press("Enter");
  await expect(ann.page.locator(".typing")).toHaveText("");
  await ann.page.getByLabel("Message", { exact: true }).type("yes");
  await expect(ben.page.locator(".typing")).toHaveText("Ann is typing…");
  await ann.page.getByLabel("Message", { exact: true }).press("Enter");
  await expect(ben.page.locator(".typing")).toHaveText("");
  const expected = ["hello from node A", "hi from node B", "hel", "yes"];
  for (const { page } of [ann, ben]) await expect(page.locator(".message .body")).toHaveText(expected);

  // Node B renders the history written through node A (no JavaScript: the server's HTML), and after a reload.
  const plain = await browser.newContext({ javaScriptEnabled: false });
  const plainPage = await plain.newPage();
  await plainPage.goto(`${nodeB.url}/${slug}`);
  await expect(plainPage.locator(".message .body")).toHaveText(expected);
  await plain.close();
  await ben.page.reload();
  await waitForHydration(ben.page);
  await expect(ben.page.locator(".message .body")).toHaveText(expected);
  await expectOnline(ben.page, ["Ann", "Ben"]);

  // Ben closes his page on node B: Ann, on node A, sees him leave.
  await ben.context.close();
  await expectOnline(ann.page, ["Ann"]);
  await expect(ann.page.locator(".online-list")).not.toContainText("Ben");
  expect(ann.errors).toEqual([]);
  expect(ben.errors).toEqual([]);
  await ann.context.close();
});

test("a node restart: its page shows the banner, then gets what the other node's member sent meanwhile, once", async ({
  browser,
  cluster,
}) => {
  const slug = uniqueRoom("restart");
  const ann = await openRoom(browser, `${cluster.nodes[0].url}/${slug}`, "Ann");
  const ben = await openRoom(browser, `${cluster.nodes[1].url}/${slug}`, "Ben");
  await expectOnline(ann.page, ["Ann", "Ben"]);
  await send(ann.page, "before");
  await expect(ben.page.locator(".message").filter({ hasText: "before" })).toHaveCount(1);

  // Node B stops (SIGTERM): Ben's page shows the banner, and Ann sees him leave at once.
  await cluster.nodes[1].stop();
  try {
    await expect(ben.page.locator(".banner")).toBeVisible();
    await expect(ben.page.locator(".banner")).toContainText("Reconnecting");
    await expectOnline(ann.page, ["Ann"]);
    // Node A still serves: Ann's message is stored and delivered to her.
    await send(ann.page, "during the outage");
    await expect(ann.page.locator(".message").filter({ hasText: "during the outage" })).toHaveCount(1);
    await expect(ann.page.locator(".message.pending")).toHaveCount(0);
  } finally {
    await cluster.revive(1);
  }
  await expect(ben.page.locator(".banner")).toBeHidden({ timeout: 15_000 });
  await expect(ben.page.locator(".message").filter({ hasText: "during the outage" })).toHaveCount(1);
  await expectOnline(ann.page, ["Ann", "Ben"]);
  await send(ben.page, "after");
  for (const { page } of [ann, ben]) {
    await expect(page.locator(".message .body")).toHaveText(["before", "during the outage", "after"]);
  }
  expect(ann.errors).toEqual([]);
  await ann.context.close();
  await ben.context.close();
});

test("an account registered on one node is signed in on the other", async ({ browser, cluster }) => {
  const [nodeA, nodeB] = cluster.nodes;
  const name = unique("Node");
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${nodeA.url}/register`);
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Password").fill("hunter2hunter2");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(`${nodeA.url}/`);
  await expect(page.locator(".account-name")).toHaveText(name);

  // The session cookie (127.0.0.1 is one cookie host for every port) is accepted by node B, and its socket token too.
  const slug = uniqueRoom("account");
  await page.goto(`${nodeB.url}/${slug}?user=someone-else`);
  await waitForHydration(page);
  await expect(page.locator(".my-name")).toHaveText(name);
  await expect(page.locator(".banner")).toBeHidden();
  const watcher = await openRoom(browser, `${nodeA.url}/${slug}`, "watcher");
  await send(page, "signed in on node A, writing on node B");
  await expect(watcher.page.locator(".message").filter({ hasText: "writing on node B" }).locator(".author")).toHaveText(
    name,
  );

  // Node B knows the name is taken: a guest on node B cannot have it.
  const impostor = await openRoom(browser, `${nodeB.url}/${slug}`, name.toUpperCase());
  await expect(impostor.page.locator(".notice")).toContainText("is a registered name");
  await expect(impostor.page.locator(".my-name")).not.toHaveText(name.toUpperCase());

  // Logging in on node B works with the password set on node A.
  const other = await browser.newContext();
  const login = await other.newPage();
  await login.goto(`${nodeB.url}/login`);
  await login.getByLabel("Name").fill(name.toLowerCase());
  await login.getByLabel("Password").fill("hunter2hunter2");
  await login.getByRole("button", { name: "Log in" }).click();
  await login.waitForURL(`${nodeB.url}/`);
  await expect(login.locator(".account-name")).toHaveText(name);
  await context.close();
  await other.close();
  await watcher.context.close();
  await impostor.context.close();
});
