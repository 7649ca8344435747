// The home page is server-rendered HTML whose forms work without scripts; its room picker is an island the WASM wakes.
import { test, expect, waitForHydration } from "../support/fixtures.mjs";

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
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto("/");
  await waitForHydration(page);
  await page.getByLabel("Or go to a room by name").fill("My Room");
  await expect(page.getByText("Opens /my-room")).toBeVisible();
  await page.getByLabel("Your name (optional)").fill("Zoë");
  await page.getByRole("button", { name: "Go" }).click();
  await page.waitForURL(/\/my-room\?user=Zo%C3%AB$/);
  expect(errors).toEqual([]);
});

test("health check answers 200", async ({ request }) => {
  const response = await request.get("/healthz");
  expect(response.status()).toBe(200);
});
