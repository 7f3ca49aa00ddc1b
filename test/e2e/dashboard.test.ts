import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { buildDashboard } from "../support/dashboard-build";
import { restCall } from "../support/rest-call";
import { eventually } from "../support/wait";
import { startTestServer, type TestServer } from "../support/test-server";

/** Debian's Chromium, which .ci/run installs; the flags keep it off the network (see the README's dashboard section). */
const CHROMIUM = process.env.TEST_CHROMIUM ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
const KEY = "dashboard-e2e-key-7f1c0b8e2d4a";
const SESSION = `dash-${process.pid}-${Date.now().toString(36)}`;
const SHEETS = ["Dialogue", "Items"];
const TASKS_PER_SHEET = 6;
/** Where the screenshots are left for a person to look at. */
const SHOTS = process.env.TEST_SCREENSHOT_DIR ?? mkdtempSync(path.join(os.tmpdir(), "dashboard-shots-"));

/** What the pixel count reads of a canvas (the tests compile without the DOM's types). */
interface CanvasLike {
  readonly width: number;
  readonly height: number;
  getContext(kind: "2d"): { getImageData(x: number, y: number, w: number, h: number): { readonly data: ArrayLike<number> } } | null;
}

const available = existsSync(CHROMIUM);
if (!available) process.stderr.write(`\n*** SKIPPED: the dashboard browser tests need Chromium at ${CHROMIUM} (bash .ci/run installs it) ***\n\n`);
const describeWithBrowser = available || process.env.CI ? describe : describe.skip;

describeWithBrowser("the dashboard in a real browser", () => {
  let server: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const requested: string[] = [];
  const leaving: string[] = [];
  const consoleErrors: string[] = [];
  const auth = { "x-api-key": KEY };

  const call = (method: string, pathname: string, body?: unknown) => restCall(server.url, method, pathname, body, auth);
  const tasks = (status: string, rows: number[]) =>
    SHEETS.flatMap((sheet) =>
      rows.map((row) => ({
        session_id: SESSION,
        task_id: `${sheet}_${String(row).padStart(4, "0")}`,
        sheet_name: sheet,
        row_index: row,
        column_name: "Text",
        source_text: `line ${row} of ${sheet}`,
        status,
      })),
    );

  beforeAll(async () => {
    buildDashboard();
    server = await startTestServer({ PERSISTENCE_API_KEYS: JSON.stringify([{ name: "ops", key: KEY, scopes: ["admin"] }]), PERSISTENCE_FLUSH_INTERVAL_MS: "100" });
    const created = await call("POST", "/api/v1/translation/sessions/batch", {
      sessions: [{ session_id: SESSION, filename: "quests.xlsx", status: "processing", total_tasks: SHEETS.length * TASKS_PER_SHEET, llm_provider: "openai" }],
      durability: "committed",
    });
    expect(created.status).toBe(200);
    const rows = Array.from({ length: TASKS_PER_SHEET }, (_, i) => i + 1);
    expect((await call("POST", "/api/v1/translation/tasks/batch", { tasks: tasks("pending", rows), durability: "committed" })).status).toBe(200);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    // Every request the page makes is seen here; one for anywhere but the service is refused and counted.
    const origin = new URL(server.url).origin;
    await context.route("**/*", async (route) => {
      const url = route.request().url();
      requested.push(url);
      if (new URL(url).hostname === "127.0.0.1" && url.startsWith(origin)) await route.continue();
      else {
        leaving.push(url);
        await route.abort("blockedbyclient");
      }
    });
    page = await context.newPage();
    page.on("console", (message) => {
      // A refused call before the key is entered is the browser's own log line, not a fault of the page.
      if (message.type() === "error" && !/status of 401/.test(message.text())) consoleErrors.push(message.text());
    });
    page.on("pageerror", (err) => consoleErrors.push(String(err)));
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Pixels of the first series' colour (#1f5fbf) drawn on a chart's canvas: more than the legend swatch means a drawn line. */
  const seriesPixels = (chart: string): Promise<number> =>
    page
      .locator(chart)
      .locator("canvas")
      .evaluate((canvas: CanvasLike) => {
        const { data } = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height);
        let n = 0;
        for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i]! - 31) < 40 && Math.abs(data[i + 1]! - 95) < 40 && Math.abs(data[i + 2]! - 191) < 40 && data[i + 3]! > 128) n++;
        return n;
      });

  const shot = async (name: string) => {
    mkdirSync(SHOTS, { recursive: true });
    const png = await page.screenshot({ fullPage: true });
    writeFileSync(path.join(SHOTS, `${name}.png`), png);
    expect(png.length).toBeGreaterThan(5_000);
  };

  it("asks for a key, keeps it for the browser session, and never puts it in a URL", async () => {
    await page.goto(`${server.url}/dashboard/`);
    await expect(page.getByRole("alert").first().textContent()).resolves.toContain("The service wants an API key");
    await page.getByLabel("API key", { exact: true }).fill(KEY);
    await page.getByRole("button", { name: "Use key" }).click();
    await page.getByRole("table").filter({ hasText: "Backend" }).getByText("sql").waitFor();
    expect(await page.evaluate('sessionStorage.getItem("persistence.dashboard.api_key")')).toBe(KEY);
    await page.reload();
    await page.getByRole("status").filter({ hasText: "Key kept for this browser session." }).waitFor();
    await page.locator('[data-table="rpcs"]').getByText("GetMetrics").waitFor();
    expect(requested.filter((url) => url.includes(KEY))).toEqual([]);
  });

  it("shows the system live: backends, calls per RPC with p50/p95/p99, the buffer, and charts that are drawn", async () => {
    await page.getByRole("tab", { name: "System" }).click();
    const health = page.getByRole("table").filter({ hasText: "Backend" });
    await expect(health.getByRole("row", { name: /sql/ }).textContent()).resolves.toContain("up");
    const rpcs = page.locator('[data-table="rpcs"]');
    await expect(rpcs.locator("thead").textContent()).resolves.toMatch(/p50.*p95.*p99/);
    await rpcs.getByRole("row", { name: /TranslationService\.BatchUpsertTasks/ }).waitFor();
    await page.locator('[data-figure="dead-letters"]').waitFor();
    await page.locator('[data-figure="flush-rate"]').waitFor();
    // Refreshed every few seconds: wait for a second sample, then the line is on the canvas.
    await page.locator('.chart:not([data-points="0"]):not([data-points="1"])').first().waitFor({ timeout: 20_000 });
    await page.waitForTimeout(200);
    expect(await seriesPixels(".chart >> nth=0")).toBeGreaterThan(50);
    await shot("system-1280");
  });

  it("lists incomplete sessions with progress bars and follows one session live while its tasks are written", async () => {
    await page.getByRole("tab", { name: "Translation" }).click();
    const row = page.locator('[data-table="sessions"]').getByRole("row", { name: new RegExp(SESSION) });
    await row.waitFor();
    await expect(row.getByRole("progressbar").getAttribute("aria-valuenow")).resolves.toBe("0");
    await row.getByRole("button", { name: "Follow" }).click();
    const watched = page.locator(`[data-session="${SESSION}"]`);
    await watched.locator('[data-stream-state="live"]').waitFor();
    const sheets = watched.locator('[data-table="sheets"]');
    await sheets.getByRole("row", { name: /Dialogue/ }).waitFor();
    await expect(sheets.getByRole("row", { name: /Dialogue/ }).textContent()).resolves.toMatch(/Dialogue\s*6\s*0\s*0\s*0\s*6/);

    // Writes arrive while the page watches: half of each sheet completes, then all of Dialogue.
    expect((await call("POST", "/api/v1/translation/tasks/batch", { tasks: tasks("completed", [1, 2, 3]) })).status).toBe(200);
    await watched.getByRole("progressbar", { name: "Progress of sheet Items" }).and(page.locator('[aria-valuenow="50"]')).waitFor();
    const dialogue = tasks("completed", [4, 5, 6]).filter((t) => t.sheet_name === "Dialogue");
    expect((await call("POST", "/api/v1/translation/tasks/batch", { tasks: dialogue })).status).toBe(200);
    await watched.getByRole("progressbar", { name: "Progress of sheet Dialogue" }).and(page.locator('[aria-valuenow="100"]')).waitFor();
    await expect(sheets.getByRole("row", { name: /Items/ }).textContent()).resolves.toMatch(/Items\s*6\s*3\s*0\s*0\s*3/);
    // The session's own counters follow the stored tasks (the client declared only the total): 9 of 12.
    await watched.locator('[data-figure="completed"]').filter({ hasText: /^9$/ }).waitFor();
    await watched.getByRole("progressbar", { name: "Progress of quests.xlsx" }).and(page.locator('[aria-valuenow="75"]')).waitFor();
    await shot("translation-1280");
  });

  it("shows the files pane: figures when the service serves StorageService, a clear notice when it does not", async () => {
    const info = await call("GET", "/");
    const served = (info.json.services as string[]).includes("persistence.v1.StorageService");
    await page.getByRole("tab", { name: "Files" }).click();
    if (served) {
      await page.locator('[data-table="files-kind"]').waitFor();
      await page.locator('[data-table="files-status"]').waitFor();
    } else {
      await expect(page.locator('[data-state="files-unavailable"]').textContent()).resolves.toContain("The files service is not available");
    }
    await shot("files-1280");
  });

  it("searches audit logs when the service serves AuditService, and says so plainly when it does not", async () => {
    const info = await call("GET", "/");
    const served = (info.json.services as string[]).includes("persistence.v1.AuditService");
    await page.getByRole("tab", { name: "Audit" }).click();
    if (!served) {
      await expect(page.locator('[data-state="audit-unavailable"]').textContent()).resolves.toContain("The audit service is not available");
      return;
    }
    const now = Date.now();
    const entries = Array.from({ length: 30 }, (_, i) => ({
      occurred_at: new Date(now - i * 60_000).toISOString(),
      actor: { type: "user", id: `u-${i % 3}`, name: `user ${i % 3}` },
      action: i % 2 ? "session.delete" : "file.upload",
      resource: { type: "session", id: `${SESSION}-${i}` },
      result: i % 5 ? "success" : "failure",
      ip: "127.0.0.1",
      message: i % 3 ? `routine change ${i}` : `翻訳の品質 check ${i}`,
    }));
    expect((await call("POST", "/api/v1/audit/logs/batch", { entries, durability: "committed" })).status).toBe(200);
    await page.getByLabel("Text").fill("翻訳");
    await page.getByLabel("Chart buckets").selectOption("1m");
    await page.getByRole("button", { name: "Search" }).click();
    await page.locator('[data-state="done"]').filter({ hasText: "entries match" }).waitFor();
    const table = page.locator('[data-table="audit"]');
    // The table may still show the previous search's rows for a moment after the status line changes.
    await eventually(async () => (await table.locator("tbody tr").count()) === 10);
    await expect(table.locator("tbody").textContent()).resolves.toContain("翻訳の品質");
    await page.getByLabel("Text").fill("");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("button", { name: "Next page" }).and(page.locator(":not([disabled])")).click();
    await page.locator('[data-state="done"]').filter({ hasText: "page 2" }).waitFor();
    await page.locator(".chart canvas").nth(1).waitFor();
    await page.waitForTimeout(200);
    expect(await seriesPixels(".chart >> nth=0")).toBeGreaterThan(50);
    const download = page.waitForEvent("download");
    await page.getByRole("button", { name: "Export CSV" }).click();
    expect((await download).suggestedFilename()).toBe("audit-logs.csv");
    await shot("audit-1280");
  });

  it("is usable at a phone's width: no pane scrolls sideways, and the tabs answer the arrow keys", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const name of ["System", "Translation", "Files", "Audit"]) {
      await page.getByRole("tab", { name }).click();
      await page.waitForTimeout(300);
      await shot(`${name.toLowerCase()}-390`);
      // Wide tables scroll inside their own region; nothing else may stick out.
      const sticksOut = `[...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.parentElement?.closest(".scroll")).map((e) => e.tagName + "." + e.className)`;
      expect(await page.evaluate(`[document.documentElement.scrollWidth <= window.innerWidth + 1, ${sticksOut}]`)).toEqual([true, []]);
    }
    await page.getByRole("tab", { name: "Audit" }).focus();
    await page.keyboard.press("ArrowRight");
    await expect(page.getByRole("tab", { name: "System" }).getAttribute("aria-selected")).resolves.toBe("true");
    await expect(page.evaluate("document.activeElement?.textContent")).resolves.toBe("System");
    // Every form control has a label a screen reader announces.
    const unlabelled = await page.evaluate(
      `[...document.querySelectorAll("input, select, button")].filter((el) => !el.labels?.length && !el.getAttribute("aria-label") && !el.textContent.trim()).map((el) => el.outerHTML)`,
    );
    expect(unlabelled).toEqual([]);
  });

  it("made no request that left 127.0.0.1 and logged no console error", () => {
    expect(requested.length).toBeGreaterThan(10);
    expect(leaving).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
