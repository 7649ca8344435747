// The home page is server-rendered HTML whose forms work without scripts; its room picker is an island the WASM wakes.
import { test, expect, waitForHydration } from "../support/fixtures.mjs";
import { collectErrors } from "../support/room.mjs";

test("home page is server-rendered before any script runs", async ({ browser, baseURL }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  const response = await page.goto(baseURL + "/");
  expect(response.status()).toBe(200);
  await expect(page.locator("h1")).toHaveText("Parley");
  await expect(page.locator(".room-picker")).toHaveAttribute("data-hydrated", "false");
  // Without any script the named-room form still gets there (a plain POST answered with a redirect).
  await page.getByLabel("Or go to a room by name").fill("No Script Room");
  await page.getByRole("button", { name: "Go" }).click();
  await page.waitForURL(baseURL + "/no-script-room");
  await expect(page.locator(".room-name")).toHaveText("no-script-room");
  await context.close();
});

test("hydration makes the home page interactive", async ({ page }) => {
  const errors = [];
  collectErrors(page, errors);
  await page.goto("/");
  await waitForHydration(page);
  await page.getByLabel("Or go to a room by name").fill("My Room");
  await expect(page.getByText("Opens /my-room")).toBeVisible();
  await page.getByLabel("Your name (optional)").fill("Zoë");
  await page.getByRole("button", { name: "Go" }).click();
  await page.waitForURL(/\/my-room\?user=Zo%C3%AB$/);
  expect(errors).toEqual([]);
});

test("pages run under a nonce CSP and cannot be framed", async ({ page }) => {
  const response = await page.goto("/");
  const policy = response.headers()["content-security-policy"];
  expect(policy).toContain("frame-ancestors 'none'");
  expect(policy).not.toContain("unsafe-inline");
  expect(response.headers()["x-frame-options"]).toBe("DENY");
  // An inline script without the nonce, as an injected one would be, is blocked.
  const ran = await page.evaluate(async () => {
    window.__injected = false;
    const script = document.createElement("script");
    script.textContent = "window.__injected = true";
    document.body.append(script);
    await new Promise((resolve) => setTimeout(resolve, 50));
    return window.__injected;
  });
  expect(ran).toBe(false);
});

test("health check answers 200", async ({ request }) => {
  const response = await request.get("/healthz");
  expect(response.status()).toBe(200);
});
