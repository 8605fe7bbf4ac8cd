// A real farm for the browser tests: the built `castanet` binary as manager and workers on
// loopback, each in its own temporary directory, and headless Chromium driven by
// playwright-core. Waits poll with deadlines; nothing sleeps for a fixed time.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { after, afterEach, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = path.resolve(here, "../test-artifacts");
const REPO = path.resolve(here, "../..");

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function castanetBinary() {
  const candidates = [process.env.CASTANET_BIN, path.join(REPO, "target/debug/castanet")].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `no castanet binary (looked at ${candidates.join(", ")}): run \`cargo build -p castanet\` or set CASTANET_BIN`,
    );
  }
  return found;
}

/// Polls `check` until it returns a truthy value; fails naming `what` after `ms`.
export async function until(what, check, ms = 20_000, everyMs = 50) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

function stopProcess(child, ms = 20_000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

export class Farm {
  /// Starts a manager; `config` lines are written into its config file before the start.
  static async start({ workers = 0, config = "", scripts = {} } = {}) {
    const farm = new Farm();
    farm.dir = mkdtempSync(path.join(tmpdir(), "castanet-web-"));
    farm.bin = castanetBinary();
    farm.secret = `web-test-secret-${process.pid}`;
    const configPath = path.join(farm.dir, "castanet-manager.toml");
    writeFileSync(configPath, `registration_secret = "${farm.secret}"\n${config}\n`);
    mkdirSync(path.join(farm.dir, "scripts"), { recursive: true });
    for (const [name, source] of Object.entries(scripts)) {
      writeFileSync(path.join(farm.dir, "scripts", name), source);
    }
    farm.configPath = configPath;
    farm.url = await farm.startManager("127.0.0.1:0");
    farm.workers = [];
    for (let n = 1; n <= workers; n++) farm.startWorker(`web-worker-${n}`);
    if (workers) {
      await until(`${workers} connected workers`, async () => {
        const { workers: list } = await farm.api("GET", "/api/v3/worker-mgt/workers");
        return list.filter((w) => w.connected && w.status === "awake").length === workers;
      });
    }
    return farm;
  }

  /// Starts the manager process; resolves to its URL once it listens.
  startManager(listen) {
    this.manager = spawn(this.bin, ["manager", "--config", this.configPath, "--listen", listen], {
      env: { ...process.env, CASTANET_LOG: "warn" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const manager = this.manager;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the manager did not say where it listens within 30 s")), 30_000);
      manager.once("exit", (code) => reject(new Error(`the manager exited (${code}) before listening`)));
      createInterface({ input: manager.stdout }).on("line", (line) => {
        const found = line.match(/^castanet manager listening on (\S+)/);
        if (found) {
          clearTimeout(timer);
          resolve(found[1]);
        }
      });
    });
  }

  /// Stops the manager (SIGTERM) and starts it again on the same address and database.
  async restartManager() {
    await stopProcess(this.manager);
    const url = await this.startManager(new URL(this.url).host);
    if (url !== this.url) throw new Error(`the manager came back on ${url}, not ${this.url}`);
  }

  startWorker(name, extraArgs = []) {
    const dataDir = path.join(this.dir, name);
    const child = spawn(
      this.bin,
      ["worker", "--manager", this.url, "--name", name, "--slots", "1", "--data-dir", dataDir, ...extraArgs],
      {
        env: { ...process.env, CASTANET_LOG: "warn", CASTANET_REGISTRATION_SECRET: this.secret },
        stdio: ["ignore", "ignore", "inherit"],
      },
    );
    this.workers.push(child);
    return child;
  }

  async api(method, apiPath, body) {
    const response = await fetch(this.url + apiPath, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${method} ${apiPath}: ${response.status} ${await response.text()}`);
    if (response.status === 204) return null;
    const type = response.headers.get("content-type") ?? "";
    return type.includes("json") ? response.json() : response.text();
  }

  async submit(name, type, settings, extra = {}) {
    const { job_types: types } = await this.api("GET", "/api/v3/jobs/types");
    const jobType = types.find((t) => t.name === type);
    return this.api("POST", "/api/v3/jobs", {
      name,
      type,
      type_etag: jobType?.etag,
      priority: 50,
      settings,
      metadata: {},
      submitter_platform: "linux",
      ...extra,
    });
  }

  async tasks(jobId) {
    return (await this.api("GET", `/api/v3/jobs/${jobId}/tasks/page?limit=1000`)).tasks;
  }

  async stop() {
    await Promise.all(this.workers.map((w) => stopProcess(w)));
    await stopProcess(this.manager);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/// Headless Chromium with a page that records console errors and uncaught exceptions.
export async function openBrowser() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(`uncaught: ${error.message}`));
  page.on("dialog", (dialog) => dialog.accept());
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    browser,
    page,
    consoleErrors,
    screenshot: (name) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true }),
    close: () => browser.close(),
  };
}

/// A `test` for a file whose tests share one browser (`currentBrowser()` returns it): a test
/// that fails leaves a screenshot of the page behind.
export function browserTestsOn(currentBrowser) {
  return (name, body) =>
    test(name, async () => {
      try {
        await body();
      } catch (error) {
        await currentBrowser()
          .screenshot(`failed-${name.replace(/\W+/g, "-")}`)
          .catch(() => undefined);
        throw error;
      }
    });
}

/// The set-up most browser-test files share: one browser for the file (and a farm started with
/// `farm` options, when given), closed after the file; every test must leave no console errors.
/// `ready(session)` runs once both are up. `session.startFarm` starts a further farm that is
/// stopped with the file's. Returns `{ session, browserTest }`.
export function browserTestFile({ farm: farmOptions, ready } = {}) {
  const farms = [];
  const session = {
    async startFarm(options) {
      const farm = await Farm.start(options);
      farms.push(farm);
      return farm;
    },
  };
  before(async () => {
    if (farmOptions) session.farm = await session.startFarm(farmOptions);
    session.browser = await openBrowser();
    session.page = session.browser.page;
    await ready?.(session);
  });
  after(async () => {
    await session.browser?.close();
    await Promise.all(farms.map((farm) => farm.stop()));
  });
  afterEach(() => {
    assert.deepEqual(session.browser.consoleErrors.splice(0), [], "no console errors");
  });
  return { session, browserTest: browserTestsOn(() => session.browser) };
}

export const BLENDER = process.env.BLENDER_PATH ?? "/usr/bin/blender";

/// Writes a `width`×`height` Cycles scene with few samples (denoising off: Debian's Blender has
/// no OpenImageDenoise). `adaptiveSampling: false` and `frameRange: [first, last]` are set in
/// the scene only when given, so each test keeps the scene it always rendered.
export async function makeScene(file, { width = 64, height = 48, adaptiveSampling, frameRange } = {}) {
  const script = [
    "import bpy",
    "s = bpy.context.scene",
    "s.render.engine = 'CYCLES'",
    "s.cycles.samples = 4",
    "s.cycles.use_denoising = False",
    ...(adaptiveSampling === false ? ["s.cycles.use_adaptive_sampling = False"] : []),
    `s.render.resolution_x = ${width}`,
    `s.render.resolution_y = ${height}`,
    "s.render.resolution_percentage = 100",
    ...(frameRange ? [`s.frame_start = ${frameRange[0]}`, `s.frame_end = ${frameRange[1]}`] : []),
    `bpy.ops.wm.save_as_mainfile(filepath=${JSON.stringify(file)})`,
  ].join("\n");
  await promisify(execFile)(BLENDER, ["-b", "--factory-startup", "--python-exit-code", "1", "--python-expr", script], {
    timeout: 120_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  assert.ok(existsSync(file), `blender wrote ${file}`);
}

/// Settings of a `simple-blender-render` job rendering `frames` of `blendfile` as PNGs into
/// `outRoot/outName/######`, without previews.
export function blenderRenderSettings({ frames, blendfile, outRoot, outName }) {
  return {
    frames,
    chunk_size: 1,
    render_output_root: outRoot,
    add_path_components: 0,
    render_output_path: `${outRoot}/${outName}/######`,
    blendfile,
    fps: 24.0,
    format: "PNG",
    image_file_extension: ".png",
    has_previews: false,
    scene: "Scene",
  };
}

export function readText(file) {
  return readFileSync(file, "utf8");
}
