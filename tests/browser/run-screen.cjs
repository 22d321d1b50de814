// Watches a running demo in Weir's web UI like a person at an office screen: the run page's
// live charts, then the run's wall screen (name and state over its charts side by side).
// Usage: node run-screen.cjs URL RUN_ID SCREENSHOT_DIR. Prints one JSON line with what it saw.
const { chromium } = require("playwright-core");
const { watchMonitor } = require("./monitor.cjs");

(async () => {
  const [url, run, dir] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const seen = {};
  // The charts page inside the UI's frame, once it has three windows with data.
  const chartsFrame = async page => {
    const handle = await page.waitForSelector("#live-charts iframe[src]", { state: "attached", timeout: 120000 });
    // Chromium does not animate a cross-site frame out of view: look at it, as a person would.
    await handle.scrollIntoViewIfNeeded();
    const frame = await handle.contentFrame();
    await frame.waitForFunction(() => document.querySelectorAll(".window").length >= 3
      && Number(document.body.dataset.livePoints || 0) > 0, null, { timeout: 120000, polling: 250 });
    return frame;
  };
  const windows = frame => frame.evaluate(() => [...document.querySelectorAll(".window")].map(w => {
    const box = w.getBoundingClientRect();
    return { title: w.querySelector("h2 span").textContent, kind: w.dataset.kind, received: Number(w.dataset.received || 0),
             yLabel: w.dataset.yLabel, xLabel: w.dataset.xLabel,
             top: Math.round(box.top), left: Math.round(box.left), width: Math.round(box.width) };
  }));
  try {
    const page = await browser.newPage({ viewport: { width: 1500, height: 850 } });
    await page.goto(`${url}#/runs/${run}`);
    let frame = await chartsFrame(page);
    seen.runPage = { heading: await page.textContent("h2"), windows: await windows(frame) };
    await page.screenshot({ path: `${dir}/ui-run-live-charts.png`, fullPage: true });
    Object.assign(seen, await watchMonitor(page, "submit-dataflow"));
    await page.locator("#monitor").screenshot({ path: `${dir}/ui-run-monitor.png` });

    // The run's Kafka on the topics page: messages written per second, from two reads.
    await page.goto(`${url}#/instances/kafka-server-1/topics`);
    await page.waitForFunction(() => Number((document.querySelector('#topics tr[data-topic="BitCoinExchangeTopic"]') || { dataset: {} }).dataset.rate || 0) > 0,
      null, { timeout: 30000 });
    seen.topicRates = await page.$$eval("#topics tr[data-topic]", trs => Object.fromEntries(trs.map(tr => [tr.dataset.topic, tr.dataset.rate === "" ? null : Number(tr.dataset.rate)])));

    await page.goto(`${url}#/runs/${run}/screen`);
    frame = await chartsFrame(page);
    seen.screen = {
      title: await page.textContent("#screen-title"),
      state: await page.textContent("#screen-state"),
      headerHidden: await page.evaluate(() => getComputedStyle(document.querySelector("header")).display === "none"),
      windows: await windows(frame),
    };
    // The windows keep updating while the person watches.
    const points = () => frame.evaluate(() => Number(document.body.dataset.livePoints || 0));
    const before = await points();
    await frame.waitForFunction(n => Number(document.body.dataset.livePoints || 0) > n, before, { timeout: 60000, polling: 250 });
    seen.screen.livePoints = [before, await points()];
    // Every window has data before the picture is taken, notifications included.
    await frame.waitForFunction(() => [...document.querySelectorAll(".window")].every(w => Number(w.dataset.received || 0) > 0), null, { timeout: 60000, polling: 250 });
    seen.screen.windows = await windows(frame);
    await page.screenshot({ path: `${dir}/ui-run-screen.png` });
    console.log(JSON.stringify(seen));
  } finally {
    await browser.close();
  }
})().catch(error => { console.error(error); process.exit(1); });
