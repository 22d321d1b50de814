// Drives Weir's web UI like a person: reads the dashboard counters, launches the ci-smoke
// workflow from the catalog (automatic_kill=false), watches the run progress, approves it on
// the run page, and reads the counters again. Usage: node ui-flow.cjs URL SCREENSHOT_DIR
// Prints one JSON line with what it saw.
const { chromium } = require("playwright-core");

(async () => {
  const [url, dir] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const seen = {};
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    const counters = async () => page.evaluate(() => Object.fromEntries(
      [...document.querySelectorAll(".counter")].map(c => [c.id, Number(c.querySelector("b").textContent)])));
    await page.goto(url + "#/");
    await page.waitForSelector(".counter");
    seen.before = await counters();

    await page.goto(url + "#/catalog");
    await page.click('[data-launch="workflow:ci-smoke"]');
    await page.selectOption('#launch-form select[name="automatic_kill"]', "false");
    await page.fill('#launch-form input[name="execution_duration"]', "2s");
    await page.screenshot({ path: `${dir}/ui-launch-form.png` });
    await page.click('#launch-form button[type="submit"]');
    await page.waitForFunction(() => location.hash.startsWith("#/runs/"), null, { timeout: 10000 });
    seen.run = await page.evaluate(() => location.hash.slice("#/runs/".length));

    // Progress: the task table updates live until the approval shows up.
    await page.waitForSelector("#tasks");
    seen.tasksWhileRunning = await page.evaluate(() => document.querySelectorAll("#tasks tr[data-task]").length);
    await page.waitForSelector(".approval", { timeout: 120000 });
    await page.screenshot({ path: `${dir}/ui-awaiting-approval.png` });
    seen.approvalText = await page.textContent(".approval");
    const graphStates = () => page.evaluate(() => Object.fromEntries(
      [...document.querySelectorAll("#task-graph .task")].map(g => [g.dataset.task, g.dataset.state])));
    await page.waitForFunction(() => document.querySelector('#task-graph .task[data-task="approve"]')?.dataset.state === "awaiting-approval");
    seen.graphWhileWaiting = await graphStates();
    // The Kafka task's log, read live from its instance.
    await page.click('#task-graph .task[data-task="kafka"]');
    await page.waitForSelector("#task-log-text");
    seen.liveLog = { source: await page.textContent("#task-log-source"), length: (await page.textContent("#task-log-text")).length };
    await page.screenshot({ path: `${dir}/ui-task-graph.png` });

    // The runs list says which run waits for whom.
    await page.goto(url + "#/runs");
    await page.waitForSelector("table.runs");
    seen.runsWaiting = await page.evaluate(() => [...document.querySelectorAll("table.runs tr.awaiting")].map(r => [r.dataset.run, r.querySelector(".awaiting-link")?.textContent]));
    await page.goto(url + "#/");
    await page.waitForSelector(".counter");
    seen.waiting = await counters();

    await page.goto(url + "#/runs/" + seen.run);
    await page.waitForSelector(".approval .approve");
    await page.click(".approval .approve");
    await page.waitForFunction(() => (document.querySelector("h2") || {}).textContent?.includes("succeeded"), null, { timeout: 120000 });
    await page.screenshot({ path: `${dir}/ui-run-succeeded.png` });
    seen.taskStates = await page.evaluate(() => [...document.querySelectorAll("#tasks tr[data-task]")].map(r => r.children[3].textContent));
    seen.graphAfter = await graphStates();
    // After the teardown the log is the one the run kept.
    await page.click('#task-graph .task[data-task="kafka"]');
    await page.waitForFunction(() => (document.getElementById("task-log-source") || {}).textContent?.includes("kept"), null, { timeout: 30000 });
    seen.keptLog = { source: await page.textContent("#task-log-source"), length: (await page.textContent("#task-log-text")).length };

    await page.goto(url + "#/");
    await page.waitForSelector(".counter");
    seen.after = await counters();
    await page.screenshot({ path: `${dir}/ui-dashboard.png` });
    console.log(JSON.stringify(seen));
  } finally {
    await browser.close();
  }
})().catch(error => { console.error(error); process.exit(1); });
