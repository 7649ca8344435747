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

test("a guest keeps its name across rooms until someone registers it, then gets a fresh one", async ({ browser, baseURL }) => {
  const name = unique("Kept");
  const slug = () => unique("kept-room-").toLowerCase();
  const guest = await (await browser.newContext({ baseURL })).newPage();
  const errors = [];
  guest.on("pageerror", (error) => errors.push(error.message));
  await guest.goto(`/${slug()}?user=${encodeURIComponent(name)}`);
  await waitForHydration(guest);
  await expect(guest.locator(".my-name")).toHaveText(name);
  // The next room, without ?user=: the name the server accepted is remembered.
  await guest.goto(`/${slug()}`);
  await waitForHydration(guest);
  await expect(guest.locator(".my-name")).toHaveText(name);
  await expect(guest.locator(".banner")).toBeHidden();

  // Someone else registers that name (any case).
  const owner = await (await browser.newContext({ baseURL })).newPage();
  await register(owner, name.toLowerCase(), "hunter2hunter2");
  await owner.waitForURL(`${baseURL}/`);

  // The guest's next visit gets a fresh random name and a live connection, not a reconnect loop under a refused name.
  await guest.goto(`/${slug()}`);
  await waitForHydration(guest);
  await expect(guest.locator(".notice")).toContainText("is a registered name");
  await expect(guest.locator(".my-name")).not.toHaveText(name);
  await expect(guest.locator(".my-name")).toHaveText(/^[a-z]+-[a-z]+$/);
  await expect(guest.locator(".banner")).toBeHidden();
  const box = guest.getByLabel("Message", { exact: true });
  await box.fill("still here");
  await box.press("Enter");
  await expect(guest.locator(".message:not(.pending)").filter({ hasText: "still here" })).toHaveCount(1);
  // And the fresh name is the one remembered from now on.
  const fresh = await guest.locator(".my-name").textContent();
  await guest.goto(`/${slug()}`);
  await waitForHydration(guest);
  await expect(guest.locator(".my-name")).toHaveText(fresh);
  await expect(guest.locator(".notice")).toHaveCount(0);
  expect(errors).toEqual([]);
});
