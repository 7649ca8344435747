// What the room specs share: fresh room names, opening a room page in its own browser context, sending a message.
import { expect, waitForHydration } from "./fixtures.mjs";

/** A room slug no other test uses. */
export const uniqueRoom = (name) => `${name}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;

/** Collects `page`'s uncaught errors and Content Security Policy violations into `errors`. */
export function collectErrors(page, errors) {
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy/i.test(message.text())) errors.push(message.text());
  });
}

/** A fresh browser context on `url` (a room page), hydrated and connected; page errors and CSP violations are
 * collected in `errors`. */
export async function openRoom(browser, url, user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  collectErrors(page, errors);
  await page.goto(`${url}${user ? `?user=${encodeURIComponent(user)}` : ""}`);
  await waitForHydration(page);
  await expect(page.locator(".banner")).toBeHidden();
  return { context, page, errors };
}

/** Types `text` into the composer and presses Enter. */
export async function send(page, text) {
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
}
