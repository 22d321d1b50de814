// Reading a run page's monitoring panel, as a person watching it would: waits until the
// topology's row has a rate (two reads) and a measured latency, then until its count grows
// without a reload. Answers { monitor: rows, monitorConsumed: [before, after] }.
const rows = "#monitor-table tr[data-topology]";
const number = text => text === "" || text === undefined ? null : Number(text);

async function watchMonitor(page, topology) {
  const row = `#monitor-table tr[data-topology="${topology}"]`;
  await page.waitForFunction(row => {
    const tr = document.querySelector(row);
    return tr && Number(tr.dataset.inRate || 0) > 0 && tr.dataset.samples !== "";
  }, row, { timeout: 60000 });
  const monitor = (await page.$$eval(rows, trs => trs.map(tr => ({ ...tr.dataset,
    lagText: tr.querySelector(".lag") && tr.querySelector(".lag").textContent,
    p99Text: tr.querySelector(".p99") && tr.querySelector(".p99").textContent,
    replicasText: tr.querySelector("td small") && tr.querySelector("td small").textContent }))))
    .map(r => ({ ...r, consumed: number(r.consumed), inRate: number(r.inRate), outRate: number(r.outRate),
      lag: number(r.lag), p99: number(r.p99), samples: number(r.samples) }));
  const consumed = () => page.$eval(row, tr => Number(tr.dataset.consumed));
  const before = await consumed();
  await page.waitForFunction(([row, n]) => Number(document.querySelector(row).dataset.consumed) > n, [row, before], { timeout: 30000 });
  return { monitor, monitorConsumed: [before, await consumed()] };
}

module.exports = { watchMonitor };
