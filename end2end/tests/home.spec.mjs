// The home page is rendered on the server and becomes interactive once the WASM bundle hydrates it.
import { test, expect, waitForHydration } from "../support/fixtures.mjs";

test("home page is server-rendered before any script runs", async ({ browser, baseURL }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  const response = await page.goto(baseURL + "/");
  expect(response.status()).toBe(200);
  await expect(page.locator("h1")).toHaveText("Parley");
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "false");
  await context.close();
});

test("hydration makes the home page interactive", async ({ page }) => {
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto("/");
  await waitForHydration(page);
  await page.getByLabel("Or go to a room by name").fill("My Room");
  await expect(page.getByText("Opens /my-room")).toBeVisible();
  expect(errors).toEqual([]);
});

test("health check answers 200", async ({ request }) => {
  const response = await request.get("/healthz");
  expect(response.status()).toBe(200);
});
