// Watches a run's page while it goes on: its task graph, then its monitoring panel for one
// topology until that topology's count grows without a reload.
// Usage: node run-page.cjs URL RUN_ID TOPOLOGY_TASK SCREENSHOT.png. Prints one JSON line.
const { chromium } = require("playwright-core");
const { watchMonitor } = require("./monitor.cjs");

(async () => {
  const [url, run, topology, screenshot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${url}#/runs/${run}`);
    await page.waitForSelector("#task-graph .task", { timeout: 30000 });
    const seen = await watchMonitor(page, topology);
    seen.graph = await page.$$eval("#task-graph .task", gs => Object.fromEntries(gs.map(g => [g.dataset.task, g.dataset.state])));
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(JSON.stringify(seen));
  } finally {
    await browser.close();
  }
})().catch(error => { console.error(error); process.exit(1); });
