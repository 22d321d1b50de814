// Opens the chart server's page in headless Chromium, waits until points arrive over the live
// stream, and saves a screenshot. Usage: node charts-live.cjs URL SCREENSHOT.png
// Prints one JSON line: {"livePoints": N, "windows": N, "status": "...", "drawn": {TITLE: {yTicks,
// xTicks, legend}}}.
const { chromium } = require("playwright-core");

(async () => {
  const [url, screenshot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    await page.goto(url);
    await page.waitForFunction(() => Number(document.body.dataset.livePoints || 0) >= 20, null, { timeout: 20000 });
    await page.waitForTimeout(300);
    await page.screenshot({ path: screenshot });
    const result = await page.evaluate(() => ({
      livePoints: Number(document.body.dataset.livePoints || 0),
      windows: document.querySelectorAll(".window").length,
      status: document.getElementById("status").textContent,
      kiosk: document.body.classList.contains("kiosk"),
      drawn: Object.fromEntries([...document.querySelectorAll(".window")].map(w =>
        [w.querySelector("h2 span").textContent, { yTicks: w.dataset.yTicks, xTicks: w.dataset.xTicks, legend: w.dataset.legend }])),
    }));
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
  }
})().catch(error => { console.error(error); process.exit(1); });
