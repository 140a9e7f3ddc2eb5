// End-to-end test of live sync in a real browser: headless Chromium, driven through ChromeDriver's
// WebDriver protocol (no npm packages), loads the demo page served by examples/game_sync_server,
// sees the initial state, sees live updates made by the server, is disconnected by the server,
// misses updates while away, reconnects and ends with exactly the server's state; a click sends a
// client write; a screenshot of the page is saved.
//
//   node tests/browser/game_sync_e2e.mjs <game_sync_server binary> <output directory>
//
// Exit codes: 0 passed, 1 failed, 77 skipped (Chromium or ChromeDriver missing; under CI that is
// a failure instead, as for the test servers).
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [serverBinary, outDir] = process.argv.slice(2);
const chromium = process.env.EVENTSOURCED_CHROMIUM || "/usr/bin/chromium";
const chromedriver = process.env.EVENTSOURCED_CHROMEDRIVER || "/usr/bin/chromedriver";
const inCi = !["", "0", "false"].includes(process.env.CI ?? "");

if (!serverBinary || !outDir) {
  console.error("usage: game_sync_e2e.mjs <game_sync_server> <output directory>");
  process.exit(2);
}
for (const tool of [chromium, chromedriver]) {
  if (!existsSync(tool)) {
    console.error(`${tool} is missing: install chromium and chromium-driver (scripts/install-deps.sh --servers does)`);
    process.exit(inCi ? 1 : 77);
  }
}

const children = [];
let profile;
function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  if (profile) rmSync(profile, { recursive: true, force: true });
}
process.on("exit", cleanup);

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  console.log(`ok - ${message}`);
}

async function until(what, probe, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// --- the game server, driven through its standard input ---

function startServer() {
  const child = spawn(serverBinary, ["--port", "0", "--tick-ms", "0"], { stdio: ["pipe", "pipe", "inherit"] });
  children.push(child);
  const lines = [];
  let waiting = null;
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (waiting) {
      const w = waiting;
      waiting = null;
      w(line);
    } else lines.push(line);
  });
  const nextLine = () =>
    lines.length > 0 ? Promise.resolve(lines.shift()) : new Promise((resolve) => (waiting = resolve));
  return {
    nextLine,
    async command(text) {
      child.stdin.write(text + "\n");
      const line = await nextLine();
      if (line.startsWith("error")) throw new Error(`server: ${text}: ${line}`);
      return line;
    },
    async state() {
      return JSON.parse(await this.command("state"));
    },
    quit() {
      child.stdin.write("quit\n");
    },
  };
}

// --- WebDriver ---

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

async function webdriver(base, method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`webdriver ${method} ${path}: ${JSON.stringify(json.value).slice(0, 300)}`);
  return json.value;
}

async function startBrowser() {
  const port = await freePort();
  const driver = spawn(chromedriver, [`--port=${port}`], { stdio: "ignore" });
  children.push(driver);
  const base = `http://127.0.0.1:${port}`;
  await until("chromedriver", async () => {
    try {
      return (await webdriver(base, "GET", "/status")).ready;
    } catch {
      return false;
    }
  });
  profile = mkdtempSync(join(tmpdir(), "eventsourced-chromium-"));
  const session = await webdriver(base, "POST", "/session", {
    capabilities: {
      alwaysMatch: {
        browserName: "chrome",
        "goog:chromeOptions": {
          binary: chromium,
          args: [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", `--user-data-dir=${profile}`, "--window-size=900,600",
          ],
        },
      },
    },
  });
  const s = `/session/${session.sessionId}`;
  return {
    goto: (url) => webdriver(base, "POST", `${s}/url`, { url }),
    run: (script) => webdriver(base, "POST", `${s}/execute/sync`, { script, args: [] }),
    async click(css) {
      const element = await webdriver(base, "POST", `${s}/element`, { using: "css selector", value: css });
      await webdriver(base, "POST", `${s}/element/${Object.values(element)[0]}/click`, {});
    },
    screenshot: () => webdriver(base, "GET", `${s}/screenshot`),
    quit: () => webdriver(base, "DELETE", s),
  };
}

// What the page shows (its DOM, as a user sees it).
const readPage = `
  const players = {};
  for (const tr of document.querySelectorAll("#players tr")) {
    const cell = (c) => tr.querySelector(c).textContent;
    players[tr.id.replace("player-", "")] = {
      name: cell(".name"), gold: cell(".gold"), level: cell(".level"), version: cell(".version") };
  }
  return { status: document.getElementById("status").dataset.status, players };`;

function sameAsServer(page, state) {
  return Object.entries(state).every(([id, p]) => {
    const shown = page.players[id];
    return shown && shown.name === p.name && shown.gold === String(p.gold) &&
      shown.level === String(p.level) && shown.version === String(p.version);
  }) && Object.keys(page.players).length === Object.keys(state).length;
}

async function main() {
  mkdirSync(outDir, { recursive: true });
  const server = startServer();
  const banner = await server.nextLine();
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(banner)?.[1]);
  check(port > 0, `the server listens (${banner})`);
  const browser = await startBrowser();
  try {
    await browser.goto(`http://127.0.0.1:${port}/?token=demo-ann&reconnect_ms=1500`);

    // 1. The initial state.
    let state = await server.state();
    await until("the initial state on the page", async () => {
      const page = await browser.run(readPage);
      return page.status === "connected" && sameAsServer(page, state);
    });
    check(true, "the page shows the initial state");

    // 2. Live updates made by the server.
    await server.command("gold p1 40");
    await server.command("gold p2 120");
    state = await server.state();
    await until("live updates", async () => sameAsServer(await browser.run(readPage), state));
    check(state.p2.level === 2, "a level-up happened on the server");
    check(true, "the page shows live updates made by the server");

    // 3. Disconnected by the server; updates made while away are missed.
    check((await server.command("kick ann")) === "ok 1", "the server closes the page's connection");
    await until("the page to notice", async () => (await browser.run(readPage)).status === "disconnected", 5000);
    const before = await browser.run(readPage);
    await server.command("gold p1 3");
    await server.command("gold p2 11");
    await server.command("gold p1 1");
    const away = await browser.run(readPage);
    check(away.status === "disconnected" && JSON.stringify(away.players) === JSON.stringify(before.players),
      "while disconnected the page misses the updates");
    state = await server.state();
    check(!sameAsServer(away, state), "the server moved on meanwhile");

    // 4. It reconnects and ends with exactly the server's state.
    await until("reconnection and catch-up", async () => {
      const page = await browser.run(readPage);
      return page.status === "connected" && sameAsServer(page, state);
    });
    check(true, "after reconnecting the page shows exactly the server's state");

    // 5. A click sends a client write; the server applies it and the page shows it.
    const goldBefore = state.p2.gold;
    await browser.click("#player-p2 .give");
    state = await until("the write on the server", async () => {
      const s = await server.state();
      return s.p2.gold === goldBefore + 5 ? s : null;
    });
    await until("the write on the page", async () => sameAsServer(await browser.run(readPage), state));
    check(true, "the button's write reached the server and came back to the page");

    // 6. A screenshot.
    const png = Buffer.from(await browser.screenshot(), "base64");
    check(png.subarray(1, 4).toString() === "PNG" && png.length > 1000, `a screenshot (${png.length} bytes)`);
    writeFileSync(join(outDir, "game_sync_page.png"), png);
    console.log(`screenshot: ${join(outDir, "game_sync_page.png")}`);
  } finally {
    await browser.quit().catch(() => {});
    server.quit();
  }
}

main().then(
  () => {
    console.log("passed");
    process.exit(0);
  },
  (e) => {
    console.error(e.stack || String(e));
    process.exit(1);
  },
);
