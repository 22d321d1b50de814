// Opens a link to a filtered topic view in two fresh browser contexts and compares what they
// show; then turns the live tail on in the first, prints {"ready": true}, and waits for a
// message carrying MARKER to appear. Usage: node topic-browser.cjs URL SCREENSHOT.png MARKER
// Prints, last, one JSON line of what it saw.
const { chromium } = require("playwright-core");

const rows = page => page.$$eval("#messages tr.message", trs => trs.map(tr => tr.innerText.replace(/\s+/g, " ").trim()));

(async () => {
  const [url, screenshot, marker] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    const open = async () => {
      const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
      const page = await context.newPage();
      await page.goto(url);
      await page.waitForSelector("#scan-summary", { timeout: 20000 });
      return page;
    };
    const first = await open();
    const second = await open();
    const firstRows = await rows(first);
    const secondRows = await rows(second);
    const summary = await first.$eval("#scan-summary", p => p.innerText);
    const injected = await first.evaluate(() => ({
      pwned: window.pwned === 1,
      elements: document.querySelectorAll("#messages script, #messages img").length,
      shownAsText: document.getElementById("messages").innerText.includes("<script>"),
    }));
    await first.check("#live-tail");
    await first.waitForFunction(() => document.body.dataset.tailing === "1", null, { timeout: 10000 });
    console.log(JSON.stringify({ ready: true }));
    await first.waitForFunction(m => document.getElementById("messages").innerText.includes(m), marker, { timeout: 15000 })
      .catch(async error => {
        const state = await first.evaluate(() => `tail: "${document.getElementById("tail-state").textContent}", rows: ${document.querySelectorAll("#messages tr.message").length}, hash: ${location.hash}`);
        throw new Error(`${error.message} (${state})`);
      });
    const tailedAt = await first.evaluate(() => Number(document.body.dataset.lastTailAt));
    const afterTail = await rows(first);
    await first.screenshot({ path: screenshot, fullPage: true });
    console.log(JSON.stringify({ firstRows, secondRows, summary, injected, tailedAt, afterTail }));
  } finally {
    await browser.close();
  }
})().catch(error => { console.error(error); process.exit(1); });
