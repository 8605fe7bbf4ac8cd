// Notifications in the dashboard, against a real manager and worker in headless Chromium:
// a webhook rule made on the Notifications page gets a signed delivery when a job completes,
// shown in the page's delivery log; with "Notify me on this computer" on, the job's
// completion shows a desktop notification (window.Notification is wrapped to observe it).
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import { after, before } from "node:test";
import { browserTestFile, until } from "./farm.mjs";

let farm;
let browser;
let page;
let receiver;
const received = [];

before(async () => {
  receiver = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ path: request.url, headers: request.headers, body: Buffer.concat(chunks) });
      response.writeHead(200).end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
});

// Registered after the receiver's `before`, so the receiver listens before the farm starts.
const { browserTest } = browserTestFile({
  farm: { workers: 1, config: "[notify]\nfirst_retry_seconds = 0.1" },
  ready: async (session) => {
    ({ farm, browser, page } = session);
    await page.addInitScript(() => {
      window.__desktopNotifications = [];
      window.Notification = class {
        static permission = "granted";
        static requestPermission() {
          return Promise.resolve("granted");
        }
        constructor(title, options) {
          window.__desktopNotifications.push({ title, body: options?.body ?? "" });
        }
        close() {}
      };
    });
  },
});

// After the browser and the farm have stopped.
after(() => receiver?.close());

browserTest("a rule made in the dashboard delivers a signed webhook, and the desktop is told", async () => {
  const hook = `http://127.0.0.1:${receiver.address().port}/hook`;
  await page.goto(`${farm.url}/notifications`);
  const form = page.getByTestId("rule-form");
  await form.getByTestId("rule-name").fill("pipeline hook");
  await form.getByTestId("rule-kind").selectOption("webhook");
  await form.getByTestId("rule-url").fill(hook);
  await form.getByTestId("rule-secret").fill("browser-secret");
  await form.getByTestId("rule-save").click();
  const row = page.getByTestId("rules-table").locator("tr", { hasText: "pipeline hook" });
  await row.waitFor();
  assert.match(await row.textContent(), /signed/);
  const [rule] = (await farm.api("GET", "/api/v3/notifications/rules")).rules;
  assert.deepEqual(rule.events, ["job-completed", "job-failed"]);
  assert.equal(rule.secret, undefined, "the secret is never sent back");

  await page.getByTestId("desktop-toggle").check();
  await until("desktop notifications on", async () =>
    /On while a Castanet page is open/.test(await page.getByTestId("desktop-state").textContent()));
  await browser.screenshot("notifications-rule");

  const job = await farm.submit("notify me", "echo-sleep-test", {
    message: "hi",
    sleep_duration_seconds: 0,
    sleep_repeats: 1,
  });
  await until("the job completed", async () => (await farm.api("GET", `/api/v3/jobs/${job.id}`)).status === "completed");

  // The delivery log on the page shows it delivered.
  const delivered = page.getByTestId("deliveries-table").locator('tr[data-status="delivered"]');
  await until("the delivery in the log", async () => (await delivered.count()) === 1);
  assert.match(await delivered.textContent(), /job-completed.*pipeline hook/s);
  await browser.screenshot("notifications-delivered");

  assert.equal(received.length, 1);
  const [request] = received;
  assert.equal(request.path, "/hook");
  assert.equal(request.headers["x-castanet-event"], "job-completed");
  const expected = `sha256=${createHmac("sha256", "browser-secret").update(request.body).digest("hex")}`;
  assert.equal(request.headers["x-castanet-signature"], expected);
  assert.equal(JSON.parse(request.body.toString()).job.id, job.id);

  const shown = await until("a desktop notification", async () => {
    const all = await page.evaluate(() => window.__desktopNotifications);
    return all.length ? all : null;
  });
  assert.deepEqual(shown, [{ title: "Castanet", body: "Job “notify me” completed" }]);

  // Edit the rule: another event, the secret left "unchanged"; then send a test through it.
  await row.getByRole("button", { name: "Edit" }).click();
  assert.equal(await form.getByTestId("rule-secret").getAttribute("placeholder"), "unchanged");
  await form.getByTestId("rule-events").getByLabel("worker-error").check();
  await form.getByTestId("rule-save").click();
  await until("the edited rule shown", async () => /worker-error/.test(await row.textContent()));
  const [edited] = (await farm.api("GET", "/api/v3/notifications/rules")).rules;
  assert.deepEqual(edited.events, ["job-completed", "job-failed", "worker-error"]);
  assert.equal(edited.secret_set, true, "the secret was kept");

  await row.getByRole("button", { name: "Test" }).click();
  await until("the test delivered", async () => received.length === 2);
  assert.equal(received[1].headers["x-castanet-event"], "test");
  const signed = `sha256=${createHmac("sha256", "browser-secret").update(received[1].body).digest("hex")}`;
  assert.equal(received[1].headers["x-castanet-signature"], signed);
  await until("the test in the log", async () => (await delivered.count()) === 2);
});
