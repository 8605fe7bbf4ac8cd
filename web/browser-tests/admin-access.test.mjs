// The admin panel of a manager in `token` mode: a viewer's token is refused (403) and the
// refusal shows in the notification area; an admin's token shows the registration secret.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, test } from "node:test";
import { Farm, openBrowser, until } from "./farm.mjs";

let farm;
let browser;
let page;

/// Creates an API token with the CLI, as an administrator would; returns the token.
function createToken(name, role) {
  const out = execFileSync(
    farm.bin,
    ["manager", "--config", farm.configPath, "token", "create", "--name", name, "--role", role],
    { env: { ...process.env, CASTANET_LOG: "warn" }, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
  );
  return out.trim();
}

/// Stores `token` where the dashboard keeps it before the dashboard's own scripts run
/// (they would ask the manager for data, and be refused, before the token is there).
/// Init scripts run in the order added: the latest token wins.
async function useToken(token) {
  await page.context().addInitScript((value) => localStorage.setItem("castanet.api-token", value), token);
}

before(async () => {
  farm = await Farm.start({ workers: 0, config: '[access]\nmode = "token"' });
  browser = await openBrowser();
  page = browser.page;
});

after(async () => {
  await browser?.close();
  await farm?.stop();
});

test("the admin panel tells a viewer it may not, and shows an admin the secret", async () => {
  await useToken(createToken("web-viewer", "viewer"));
  await page.goto(`${farm.url}/admin`);
  const notices = page.getByTestId("notifications");
  await notices.getByText(/Registration secret: .*needs role admin/).waitFor();
  await notices.getByText(/Audit log: .*needs role admin/).waitFor();
  assert.match(await page.getByTestId("secret-error").textContent(), /Not available: .*needs role admin/);
  assert.match(await page.getByTestId("audit-table").textContent(), /Not available: .*needs role admin/);
  await browser.screenshot("admin-page-viewer");
  // The browser reports each refused request; nothing else may go wrong.
  const refused = /status of 403/;
  assert.ok(browser.consoleErrors.some((text) => refused.test(text)));
  assert.deepEqual(browser.consoleErrors.filter((text) => !refused.test(text)), []);
  browser.consoleErrors.splice(0);

  await useToken(createToken("web-admin", "admin"));
  await page.goto(`${farm.url}/admin`);
  await page.getByRole("button", { name: "Show" }).click();
  await until("the secret shown", async () => (await page.getByTestId("secret-value").textContent()) === farm.secret, 5_000);
  assert.deepEqual(browser.consoleErrors, [], "no console errors");
});
