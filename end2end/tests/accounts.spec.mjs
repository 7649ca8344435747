// Accounts alongside guests: register, log out, log in; an account's name is its own in every room. The account pages
// are plain server-rendered forms (no WASM), so nothing waits for hydration on them.
import { test, expect, waitForHydration } from "../support/fixtures.mjs";

const unique = (prefix) => `${prefix}${Date.now().toString(36).slice(-4)}${Math.floor(Math.random() * 1e4)}`;

async function register(page, name, password) {
  await page.goto("/register");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
}

test("register, chat as the account, log out and log back in", async ({ browser, baseURL }) => {
  const name = unique("Acct");
  const context = await browser.newContext({ baseURL });
  const page = await context.newPage();
  await register(page, name, "hunter2hunter2");
  await page.waitForURL(`${baseURL}/`);
  await expect(page.locator(".account-name")).toHaveText(name);

  // In a room the account's name wins over ?user=.
  const slug = unique("acct-room-").toLowerCase();
  await page.goto(`/${slug}?user=someone-else`);
  await waitForHydration(page);
  await expect(page.locator(".my-name")).toHaveText(name);
  await expect(page.locator(".banner")).toBeHidden();
  const guest = await (await browser.newContext({ baseURL })).newPage();
  await guest.goto(`/${slug}?user=watcher`);
  await waitForHydration(guest);
  const box = page.getByLabel("Message", { exact: true });
  await box.fill("signed in");
  await box.press("Enter");
  await expect(guest.locator(".message").filter({ hasText: "signed in" }).locator(".author")).toHaveText(name);

  // A guest cannot take the account's name (any case).
  const impostor = await (await browser.newContext({ baseURL })).newPage();
  await impostor.goto(`/${slug}?user=${encodeURIComponent(name.toUpperCase())}`);
  await waitForHydration(impostor);
  await expect(impostor.locator(".notice")).toContainText("is a registered name");
  await expect(impostor.locator(".my-name")).not.toHaveText(name.toUpperCase());
  await expect(impostor.locator(".banner")).toBeHidden();

  // Log out, then log in again (a wrong password first).
  await page.goto("/logout");
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForURL(`${baseURL}/`);
  await expect(page.getByRole("link", { name: "Log in" })).toBeVisible();
  await page.goto("/login");
  await page.getByLabel("Name").fill(name.toLowerCase());
  await page.getByLabel("Password").fill("wrong password");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.locator(".form-error")).toHaveText("Unknown name or wrong password.");
  await expect(page.getByLabel("Name")).toHaveValue(name.toLowerCase());
  await page.getByLabel("Password").fill("hunter2hunter2");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(`${baseURL}/`);
  await expect(page.locator(".account-name")).toHaveText(name);
  await context.close();
});

test("names are unique case-insensitively and passwords have a minimum length", async ({ browser, baseURL }) => {
  const name = unique("Dup");
  const first = await (await browser.newContext({ baseURL })).newPage();
  await register(first, name, "long enough pw");
  await first.waitForURL(`${baseURL}/`);
  const second = await (await browser.newContext({ baseURL })).newPage();
  await register(second, name.toLowerCase(), "long enough pw");
  await expect(second.locator(".form-error")).toHaveText("That name is taken. Pick another one.");
  await second.getByLabel("Name").fill(unique("Short"));
  await second.getByLabel("Password").fill("short");
  // The browser's own minlength check stops the form; the server rule is covered by the Rust tests.
  await expect(second.getByLabel("Password")).toHaveAttribute("minlength", "8");
});

test("logging in works without JavaScript", async ({ browser, baseURL }) => {
  const name = unique("NoJs");
  const setup = await (await browser.newContext({ baseURL })).newPage();
  await register(setup, name, "hunter2hunter2");
  await setup.waitForURL(`${baseURL}/`);
  const context = await browser.newContext({ baseURL, javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto("/login");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Password").fill("hunter2hunter2");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(`${baseURL}/`);
  await expect(page.locator(".account-name")).toHaveText(name);
  await context.close();
});
