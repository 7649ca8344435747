// The operators' dashboard (`/dashboard`, docs/protocol.md §7.6): an operator made with `server admin` watches the
// numbers of the node move while another page chats; another account gets 403, a guest the login page, and the
// `admin:stats` channel refuses a socket of a non-operator; in a two-node cluster one dashboard shows both nodes, each
// with its history from the first frame.
// Leaves screenshots of the live board in /tmp/dashboard.png and /tmp/dashboard-cluster.png (DASHBOARD_SCREENSHOT
// and DASHBOARD_CLUSTER_SCREENSHOT override the paths).
import { execFileSync } from "node:child_process";
import { test, expect, waitForHydration } from "../support/fixtures.mjs";
import { serverBinary } from "../support/server.mjs";

const unique = (prefix) => `${prefix}${Date.now().toString(36).slice(-4)}${Math.floor(Math.random() * 1e4)}`;

async function register(browser, baseURL, name) {
  const context = await browser.newContext({ baseURL });
  const page = await context.newPage();
  await page.goto("/register");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Password").fill("hunter2hunter2");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(`${baseURL}/`);
  return page;
}

/** `server <args…>` against the test server's data directory. */
function cli(server, ...args) {
  return execFileSync(serverBinary(), [...args, "--data-dir", server.dataDir], { encoding: "utf8" });
}

/** Joins `admin:stats` from inside `page` with a raw V2 socket and `token`; resolves to the join reply's payload. */
function joinStats(page, token) {
  return page.evaluate(
    (token) =>
      new Promise((resolve, reject) => {
        const origin = location.origin.replace("http", "ws");
        const socket = new WebSocket(`${origin}/socket/websocket?vsn=2.0.0&token=${encodeURIComponent(token)}`);
        socket.onopen = () => socket.send(JSON.stringify(["1", "1", "admin:stats", "phx_join", {}]));
        socket.onmessage = (event) => {
          const [, ref, , name, payload] = JSON.parse(event.data);
          if (ref === "1" && name === "phx_reply") {
            socket.close();
            resolve(payload);
          }
        };
        socket.onerror = () => reject(new Error("socket failed"));
      }),
    token,
  );
}

test("an operator sees the numbers move while another page chats; everyone else is refused", async ({
  browser,
  baseURL,
  server,
}) => {
  const operator = unique("Op");
  const dashboard = await register(browser, baseURL, operator);
  expect(cli(server, "admin", "--user", operator.toLowerCase())).toContain(`${operator} is an operator`);

  await dashboard.setViewportSize({ width: 1280, height: 900 });
  const response = await dashboard.goto("/dashboard");
  expect(response.status()).toBe(200);
  await waitForHydration(dashboard);
  const card = dashboard.locator(".node-card").first();
  await expect(card).toBeVisible();
  const messagesPerSecond = card.locator('[data-figure="messages_per_s"] .figure-value');
  const connections = card.locator('[data-figure="connections"] .figure-value');
  await expect(messagesPerSecond).toHaveText("0");

  // Another page chats in a room: a few messages a second, under the rate limit (20 per 10 s).
  const slug = unique("dash-room-").toLowerCase();
  const chat = await (await browser.newContext({ baseURL })).newPage();
  await chat.goto(`/${slug}?user=chatter`);
  await waitForHydration(chat);
  await expect(connections).not.toHaveText("1");
  const box = chat.getByLabel("Message", { exact: true });
  for (let n = 1; n <= 8; n++) {
    await box.fill(`busy ${n}`);
    await box.press("Enter");
    await chat.waitForTimeout(350);
  }
  await expect(chat.locator(".message").filter({ hasText: "busy 8" })).toBeVisible();
  await expect(messagesPerSecond).not.toHaveText("0");
  await expect(card.locator('[data-figure="deliveries_per_s"] .figure-value')).not.toHaveText("0");
  await expect(card.locator('[data-figure="commit_p99_ms"] .figure-value')).toContainText("ms");
  const busiest = card.locator(".busiest");
  await expect(busiest.locator("table").first()).toContainText(slug);
  await expect(busiest.locator("table").nth(1)).toContainText(slug);
  await expect(card.locator(".spark polyline").first()).toHaveAttribute("points", /\d/);
  await dashboard.screenshot({ path: process.env.DASHBOARD_SCREENSHOT || "/tmp/dashboard.png", fullPage: true });

  // Another account: 403, on the page and on the channel.
  const other = unique("NotOp");
  const refused = await register(browser, baseURL, other);
  const forbidden = await refused.goto("/dashboard");
  expect(forbidden.status()).toBe(403);
  await expect(refused.getByRole("heading", { name: "Operators only" })).toBeVisible();
  await expect(refused.locator(".node-card")).toHaveCount(0);
  const token = cli(server, "token", "--user", other).trim();
  expect(await joinStats(refused, token)).toEqual({ status: "error", response: { reason: "unauthorized" } });
  const operatorToken = cli(server, "token", "--user", operator).trim();
  expect((await joinStats(refused, operatorToken)).status).toBe("ok");

  // A guest: the login page.
  const guest = await (await browser.newContext({ baseURL })).newPage();
  await guest.goto("/dashboard");
  await expect(guest).toHaveURL(`${baseURL}/login`);
  await expect(guest.getByRole("button", { name: "Log in" })).toBeVisible();
});

test("in a cluster, a dashboard on one node shows every node, and chat on another node moves its numbers", async ({
  browser,
  cluster,
}) => {
  const [nodeA, nodeB] = cluster.nodes;
  const operator = unique("ClusterOp");
  const dashboard = await register(browser, nodeA.url, operator);
  const granted = execFileSync(serverBinary(), ["admin", "--user", operator, "--database-url", cluster.postgres.url], {
    encoding: "utf8",
  });
  expect(granted).toContain(`${operator} is an operator`);

  await dashboard.setViewportSize({ width: 1280, height: 1100 });
  await dashboard.waitForTimeout(6_000);
  await dashboard.goto(`${nodeA.url}/dashboard`);
  await waitForHydration(dashboard);
  await expect(dashboard.locator(".node-card")).toHaveCount(2);
  const cardA = dashboard.locator(`.node-card[data-node="${nodeA.id}"]`);
  const cardB = dashboard.locator(`.node-card[data-node="${nodeB.id}"]`);
  await expect(cardA).toBeVisible();
  await expect(cardB).toBeVisible();
  // Node B's history came in node A's join reply: its charts hold the seconds B sampled before the page opened, not
  // one point a second from now. (Not "as many as A's": the nodes start one after the other, B up to seconds later.)
  const points = async (card) => {
    const line = await card.locator(".spark polyline").first().getAttribute("points");
    return line.split(" ").length;
  };
  const [pointsA, pointsB] = [await points(cardA), await points(cardB)];
  expect(pointsA).toBeGreaterThan(4);
  expect(pointsB).toBeGreaterThan(4);

  const slug = unique("cluster-dash-").toLowerCase();
  const chat = await (await browser.newContext({ baseURL: nodeB.url })).newPage();
  await chat.goto(`/${slug}?user=chatter`);
  await waitForHydration(chat);
  const box = chat.getByLabel("Message", { exact: true });
  for (let n = 1; n <= 6; n++) {
    await box.fill(`on node B ${n}`);
    await box.press("Enter");
    await chat.waitForTimeout(350);
  }
  await expect(cardB.locator('[data-figure="messages_per_s"] .figure-value')).not.toHaveText("0");
  await expect(cardB.locator(".busiest table").nth(1)).toContainText(slug);
  const screenshot = process.env.DASHBOARD_CLUSTER_SCREENSHOT || "/tmp/dashboard-cluster.png";
  await dashboard.screenshot({ path: screenshot, fullPage: true });
});
