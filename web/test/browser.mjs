// Drives web/dist in headless Chromium against a running Latchkey: serves
// the page from its own origin (so every call is cross-origin and CORS is
// exercised), runs the scenario over Connect and over gRPC-Web, and fails
// unless every step passed in the browser.
//
//   LATCHKEY_API=http://127.0.0.1:8080 LATCHKEY_KEY=lk_... WEB_PORT=8090 node test/browser.mjs
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { join, extname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const api = process.env.LATCHKEY_API;
const key = process.env.LATCHKEY_KEY;
const port = Number(process.env.WEB_PORT);
if (!api || !key || !port) {
  console.error("browser test: set LATCHKEY_API, LATCHKEY_KEY and WEB_PORT");
  process.exit(2);
}
const dist = fileURLToPath(new URL("../dist/", import.meta.url));
const types = { ".html": "text/html", ".js": "text/javascript" };
const web = createServer(async (req, res) => {
  const name = req.url === "/" ? "index.html" : req.url.slice(1).split("?")[0];
  try {
    const body = await readFile(join(dist, name.replace(/\.\.+/g, "")));
    res.writeHead(200, { "Content-Type": types[extname(name)] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((resolve) => web.listen(port, "127.0.0.1", resolve));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"], // playwright gives it a fresh profile
});
let failed = false;
try {
  const page = await browser.newPage();
  page.on("console", (m) => m.type() === "error" && console.error(`browser console: ${m.text()}`));
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForFunction(() => typeof window.latchkeyScenario === "function");
  const want = ["issue", "list", "verify", "rotate", "revoke", "watch", "refused call"];
  for (const transport of ["connect", "grpc-web"]) {
    const steps = await page.evaluate(([a, k, t]) => window.latchkeyScenario(a, k, t), [api, key, transport]);
    for (const s of steps) {
      console.log(`${transport.padEnd(8)} ${s.step.padEnd(16)} ${s.ok ? "ok" : "FAILED"}  ${s.detail}`);
    }
    const passed = steps.filter((s) => s.ok).map((s) => s.step);
    if (want.some((w) => !passed.includes(w)) || steps.some((s) => !s.ok)) {
      failed = true;
    }
  }
  // What the page shows is what was recorded.
  const shown = await page.locator("#steps li").count();
  if (shown !== want.length * 2) {
    console.error(`the page shows ${shown} steps, want ${want.length * 2}`);
    failed = true;
  }
} finally {
  await browser.close();
  web.close();
}
if (failed) {
  console.error("browser test: a step failed in the browser");
  process.exit(1);
}
console.log("browser test: every step passed over Connect and gRPC-Web");
