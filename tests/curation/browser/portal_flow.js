// Drives the portal in Debian's chromium through playwright-core; run by tests/curation/test_browser.py.
// Input (environment): BASE_URL, PASSWORD, KEEP_NAME, DROP_UID, APPROVE_FACT, ARTIFACTS.
// Output: one JSON line on stdout with what the browser saw; the pytest side checks the database and graph.
"use strict";
const path = require("path");
const { chromium } = require("playwright-core");

const env = process.env;
const base = env.BASE_URL.replace(/\/$/, "");

async function login(page, username) {
  await page.goto(`${base}/accounts/login/?next=/portal/`);
  await page.fill("#id_username", username);
  await page.fill("#id_password", env.PASSWORD);
  await Promise.all([page.waitForURL(/\/portal\/entities\//), page.click("button[type=submit]")]);
}

async function logout(page) {
  await Promise.all([page.waitForLoadState("load"), page.click("header form.who button")]);
}

(async () => {
  const out = {};
  const browser = await chromium.launch({
    executablePath: env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.setDefaultTimeout(15000);

    // curator: search, open the entity, merge the duplicate into it, approve a fact
    await login(page, "curator");
    out.role = await page.textContent("header [data-role]");
    await page.fill("#entity-search input[name=q]", "stanley");
    await Promise.all([page.waitForURL(/q=stanley/), page.click("#entity-search button[type=submit]")]);
    out.search_results = await page.$$eval("#entities tbody tr td:first-child a", (as) => as.map((a) => a.textContent.trim()));
    await Promise.all([page.waitForURL(/\/portal\/entities\/\d+\/$/), page.click(`#entities a:text-is("${env.KEEP_NAME}")`)]);
    await page.fill("#merge-other", env.DROP_UID);
    await page.fill("#merge-form input[name=reason]", "duplicate brand (browser test)");
    await Promise.all([page.waitForLoadState("load"), page.click("#merge-submit")]);
    out.after_merge_message = await page.textContent(".messages");
    out.aliases = await page.textContent("#aliases");
    await Promise.all([page.waitForLoadState("load"), page.click(`button[data-approve="${env.APPROVE_FACT}"]`)]);
    out.approved_status = await page.textContent(`tr[data-fact="${env.APPROVE_FACT}"] .badge`);
    // the neighbourhood graph renders from the graph store (after the merge)
    await page.waitForFunction(() => document.querySelectorAll("#graph g.node").length >= 4);
    await page.waitForTimeout(1500); // let the layout settle for the screenshot
    out.graph_nodes = await page.$$eval("#graph g.node", (gs) => gs.map((g) => g.dataset.uid).sort());
    await page.screenshot({ path: path.join(env.ARTIFACTS, "entity-page.png"), fullPage: true });
    out.entity_url = page.url();

    await page.goto(`${base}/portal/ops/models/`);
    out.metric_charts = await page.$$eval("svg.chart", (s) => s.length);
    await page.screenshot({ path: path.join(env.ARTIFACTS, "metrics-page.png"), fullPage: true });
    await logout(page);

    // viewer: sees the entity and its facts, has no edit controls, and a forged POST is refused
    await login(page, "viewer");
    out.viewer_role = await page.textContent("header [data-role]");
    await page.goto(out.entity_url);
    out.viewer_fact_rows = await page.$$eval("table.facts tbody tr[data-fact]", (r) => r.length);
    out.viewer_approve_buttons = await page.$$eval("button[data-approve]", (b) => b.length);
    out.viewer_merge_form = await page.$$eval("#merge-form", (f) => f.length);
    out.viewer_post_status = await page.evaluate(async (factId) => {
      const token = (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || "";
      const body = new URLSearchParams({ action: "approve", fact_ids: factId, csrfmiddlewaretoken: token });
      const r = await fetch("/portal/facts/bulk", { method: "POST", body, credentials: "same-origin" });
      return r.status;
    }, env.REJECT_FACT);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
})().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + "\n");
  process.exit(1);
});
