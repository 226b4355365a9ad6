// The dashboard in Debian's Chromium against the real daemon serving
// examples/cluster-3node.yaml (3 nodes, 16 GPUs). Screenshots go to
// build/ui-artifacts (or $GPURM_UI_ARTIFACTS).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { api, launchBrowser, screenshot, startDaemon, watchConsole } from './support.mjs';

// Waits are bounded by what they wait for, generously (a loaded CI machine),
// never asserted on.
const WAIT = { timeout: 30000 };

describe('dashboard', () => {
  let daemon;
  let browser;
  let page;
  let problems;
  let streamAvailable;

  before(async () => {
    daemon = await startDaemon();
    browser = await launchBrowser();
    // Whether this daemon has the events stream decides which live mode the
    // page must show.
    const controller = new AbortController();
    const response = await fetch(`${daemon.api}/events`, { signal: controller.signal });
    streamAvailable = response.ok;
    controller.abort();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    problems = watchConsole(page);
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  // Every console problem so far, less the ones `allowed` explains.
  function unexpectedProblems(allowed = []) {
    return problems.filter((p) => !allowed.some((pattern) => pattern.test(p)));
  }

  test('loads with no console errors and shows every GPU of the inventory', async () => {
    await page.goto(daemon.base + '/');
    assert.equal(await page.title(), 'gpurm · GPUs');
    await page.waitForFunction(() => document.querySelectorAll('.gpu').length === 16, null, WAIT);
    const monitoring = (await api(daemon, 'GET', '/monitoring?window=0')).body;
    const expected = monitoring.nodes.flatMap((n) => n.gpus.map((g) => ({ ...g, node: n.node_name })));
    assert.equal(expected.length, 16);
    assert.deepEqual(
      await page.locator('section.node').evaluateAll((els) => els.map((e) => e.dataset.node)),
      monitoring.nodes.map((n) => n.node_name),
    );
    for (const gpu of expected) {
      const card = page.locator(`.gpu[data-uuid="${gpu.uuid}"]`);
      assert.equal(await card.getAttribute('data-node'), gpu.node);
      assert.equal(await card.getAttribute('data-index'), String(gpu.index));
      const text = await card.innerText();
      assert.match(text, new RegExp(`GPU ${gpu.index}`));
      assert.ok(text.includes(gpu.name), `${gpu.uuid} shows its model ${gpu.name}: ${text}`);
      assert.ok(text.includes(`util ${Math.round(gpu.utilization * 100)}%`), text);
      assert.match(text, new RegExp(`/ ${gpu.memory_total_gb >= 100 ? gpu.memory_total_gb.toFixed(0) : gpu.memory_total_gb.toFixed(1)} GB`));
      if (gpu.temperature_c !== null) assert.ok(text.includes(`${Math.round(gpu.temperature_c)} °C`), text);
      if (gpu.power_w !== null) assert.ok(text.includes(`${Math.round(gpu.power_w)}`), text);
      assert.match(text, /healthy/);
      assert.match(text, /free/);
    }
    await page.waitForSelector(`#connection[data-state="${streamAvailable ? 'live' : 'polling'}"]`, WAIT);
    // Let a few polling passes (and the stream) run before judging the console.
    await page.waitForFunction(() => window.gpurm.live.newestApplied >= 3, null, WAIT);
    await page.waitForSelector('#summary:has-text("16 GPUs")', WAIT);
    await screenshot(page, '01-dashboard.png');
    assert.deepEqual(unexpectedProblems(), []);
  });

  test('updates when an allocation is made through the API, without a reload', async () => {
    await page.evaluate(() => {
      window.notReloaded = true;
    });
    const made = await api(daemon, 'POST', '/allocate', {
      gpu_count: 2, gpu_type: 'A100', memory_gb: 40, owner: 'api-user', lease_ttl_seconds: 600,
    });
    assert.equal(made.status, 200, JSON.stringify(made.body));
    const id = made.body.allocation_id;
    for (const grant of made.body.gpus) {
      const card = page.locator(`.gpu[data-uuid="${grant.gpu_uuid}"][data-state="allocated"]`);
      await card.waitFor(WAIT);
      assert.match(await card.locator('.holder').innerText(), /api-user/);
    }
    const row = page.locator(`tr[data-allocation="${id}"]`);
    await row.waitFor(WAIT);
    assert.match(await row.locator('.owner').innerText(), /api-user/);
    // The whole id: prefixes of two allocations' ids can be equal.
    assert.equal(await row.locator('td.mono').innerText(), id);
    assert.match(await row.locator('.gpus').innerText(), /gpu-node-2: \d, \d \(whole\)/);
    assert.match(await row.locator('.lease').innerText(), /left/);
    await page.waitForSelector('#summary:has-text("2 allocated")', WAIT);
    assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was not reloaded');
    await screenshot(page, '02-allocation-made-through-the-api.png');

    // Released from the page: the first click arms the button, the second releases.
    const release = row.locator('button.release');
    await release.click();
    assert.equal(await release.innerText(), 'Confirm release');
    await release.click();
    await row.waitFor({ state: 'detached', ...WAIT });
    for (const grant of made.body.gpus) {
      await page.locator(`.gpu[data-uuid="${grant.gpu_uuid}"][data-state="free"]`).waitFor(WAIT);
    }
    const after = await api(daemon, 'GET', `/allocations/${id}`);
    assert.equal(after.body.state, 'released');
    assert.deepEqual(unexpectedProblems(), []);
  });

  test('the request form explains a request that cannot fit, and allocates one that does', async () => {
    await page.fill('#req-gpu_count', '9');
    await page.fill('#req-gpu_type', 'A100');
    await page.fill('#req-memory_gb', '70');
    await page.click('button.validate');
    const outcome = page.locator('#request .result .outcome');
    await outcome.waitFor(WAIT);
    assert.equal(await outcome.getAttribute('data-outcome'), 'never');
    const reasons = await page.locator('#request .reasons li').allInnerTexts();
    assert.ok(reasons.some((r) => /^gpu-node-2: .*of 9 needed A100/.test(r)), reasons.join('\n'));
    assert.ok(reasons.some((r) => /^gpu-node-1: no A100 GPUs/.test(r)), reasons.join('\n'));
    assert.match(await page.locator('#request .would-fit .suggestion').innerText(), /A100/);
    assert.match(await page.locator('#request .would-fit').innerText(), /at most 7 GPU\(s\) on one node/);
    await screenshot(page, '03-cannot-fit-validate.png');

    // Without a token the page will not allocate for nobody: it asks who.
    await page.fill('#req-gpu_count', '2');
    await page.fill('#req-gpu_type', 'H100');
    await page.fill('#req-memory_gb', '16');
    await page.fill('#req-owner', '');
    await page.click('button.allocate');
    await page.waitForSelector('#request .result .outcome[data-outcome="invalid"]:has-text("owner")', WAIT);
    assert.equal(await page.getAttribute('#req-owner', 'aria-invalid'), 'true');

    // Allocate answers 409 with the reasons; the form shows them.
    await page.fill('#req-owner', 'form-user');
    await page.click('button.allocate');
    await page.waitForSelector('#request .result .outcome:has-text("Cannot allocate")', WAIT);
    const refused = await page.locator('#request .result').innerText();
    assert.match(refused, /no H100 GPUs/);
    assert.match(refused, /free GPUs by type: .*A100/);
    await screenshot(page, '04-cannot-fit-allocate.png');

    // A request that fits: a shared slice of a T4.
    await page.fill('#req-gpu_count', '1');
    await page.fill('#req-gpu_type', 'T4');
    await page.fill('#req-memory_gb', '6');
    await page.check('#req-shared');
    await page.click('button.allocate');
    const allocated = page.locator('#request .result .outcome[data-outcome="allocated"]');
    await allocated.waitFor(WAIT);
    assert.match(await page.locator('#request pre.env').innerText(), /CUDA_VISIBLE_DEVICES=\d/);
    await page.locator('tr:has(td.owner:text("form-user"))').waitFor(WAIT);
    await page.locator('.gpu[data-state="shared"] .holder:has-text("form-user")').waitFor(WAIT);
    // The only console problem allowed: the browser's note of the 409 answer.
    assert.deepEqual(unexpectedProblems([/status of 409 \(Conflict\).*\/api\/v1\/gpu\/allocate/]), []);
  });

  test("the form's policies are the daemon's list, with its default", async () => {
    const listed = (await api(daemon, 'GET', '/policies')).body;
    const select = page.locator('#req-policy');
    const expected = ['', ...listed.policies.map((p) => p.name)];
    await page.waitForFunction(
      (count) => document.querySelectorAll('#req-policy option').length === count, expected.length, WAIT);
    const options = await select.locator('option').evaluateAll(
      (els) => els.map((e) => ({ value: e.value, text: e.textContent, title: e.title })));
    assert.deepEqual(options.map((o) => o.value), expected);
    assert.equal(options[0].text, `server default (${listed.default})`);
    for (const policy of listed.policies) {
      assert.equal(options.find((o) => o.value === policy.name).title, policy.description);
    }
    // A policy chosen here reaches the daemon: validate with the last one listed.
    await page.fill('#req-gpu_count', '1');
    await page.fill('#req-gpu_type', '');
    await page.fill('#req-memory_gb', '0');
    await page.uncheck('#req-shared');
    await select.selectOption(expected.at(-1));
    await page.click('button.validate');
    await page.locator('#request .result .outcome[data-outcome="fits"]').waitFor(WAIT);
    await select.selectOption('');
    assert.deepEqual(unexpectedProblems([/status of 409 \(Conflict\).*\/api\/v1\/gpu\/allocate/]), []);
  });

  test('a GPU shows its last hour as charts, and readings move live', async () => {
    const inventory = readFileSync(daemon.inventory, 'utf8');
    const monitoring = (await api(daemon, 'GET', '/monitoring?window=0')).body;
    const target = monitoring.nodes.find((n) => n.node_name === 'gpu-node-3').gpus[0];
    await page.click(`.gpu[data-uuid="${target.uuid}"]`);
    const detail = page.locator('#detail');
    await detail.waitFor(WAIT);
    assert.match(await detail.locator('h2').innerText(), /gpu-node-3 · GPU 0 · T4/);
    assert.equal(await detail.locator('figure.chart canvas').count(), 3);
    const captions = await detail.locator('figcaption').allInnerTexts();
    assert.deepEqual(captions.map((c) => c.split(' ')[0]), ['Utilization', 'Memory', 'Temperature']);
    await page.waitForFunction(() => window.gpurm.live.historyLoaded && !document.querySelector('#detail .note'), null, WAIT);

    // The GPU gets busy and hot: the static provider re-reads the file on
    // its next sample, the daemon reports the change, the card and the
    // charts follow without a reload.
    const lines = inventory.split('\n');
    const node3 = lines.findIndex((l) => l.includes('name: gpu-node-3'));
    const utilization = lines.findIndex((l, i) => i > node3 && /^\s+utilization:/.test(l));
    const temperature = lines.findIndex((l, i) => i > node3 && /^\s+temperature_c:/.test(l));
    lines[utilization] = lines[utilization].replace(/utilization: .*/, 'utilization: 0.97');
    lines[temperature] = lines[temperature].replace(/temperature_c: .*/, 'temperature_c: 83');
    writeFileSync(daemon.inventory, lines.join('\n'));
    const card = page.locator(`.gpu[data-uuid="${target.uuid}"]`);
    await card.locator('.meter-label:text("util 97%")').waitFor(WAIT);
    await card.locator('.temperature:text("83 °C")').waitFor(WAIT);
    await detail.locator('dd:text("97%")').waitFor(WAIT);
    if (streamAvailable) {
      // It came through the events stream.
      await page.waitForFunction((uuid) => window.gpurm.live.lastEvent?.uuid === uuid, target.uuid, WAIT);
    }
    // The history gets the new sample.
    await page.waitForFunction((uuid) => window.gpurm.live.history.get(uuid)?.some((p) => p.utilization === 0.97),
      target.uuid, WAIT);
    await screenshot(page, '05-gpu-detail-live.png');
    await detail.locator('button.close').click();
    await detail.waitFor({ state: 'hidden', ...WAIT });
    assert.deepEqual(unexpectedProblems([/status of 409 \(Conflict\).*\/api\/v1\/gpu\/allocate/]), []);
  });

  test('a 401 asks for a token, which then goes with every request', async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const authorized = [];
    // Stands in for a daemon with authentication on: API calls without the
    // token are refused.
    await context.route('**/api/v1/**', (route) => {
      const header = route.request().headers().authorization ?? '';
      if (header !== 'Bearer s3cret') {
        return route.fulfill({
          status: 401,
          contentType: 'application/json',
          body: JSON.stringify({ error: { code: 'unauthenticated', message: 'a bearer token is required', field: '' } }),
        });
      }
      authorized.push(route.request().url());
      return route.continue();
    });
    const tokenPage = await context.newPage();
    await tokenPage.goto(daemon.base + '/');
    const dialog = tokenPage.locator('#token-dialog');
    await dialog.waitFor(WAIT);
    assert.match(await dialog.locator('.reason').innerText(), /a bearer token is required/);
    // Behind the dialog nothing is known about the daemon yet, its queue neither.
    assert.doesNotMatch(await tokenPage.locator('#queue').innerText(), /no request queue/);
    await tokenPage.fill('#token-dialog input[name="token"]', 's3cret');
    await screenshot(tokenPage, '06-token-prompt.png');
    await tokenPage.click('#token-dialog button[value="ok"]');
    await tokenPage.waitForFunction(() => document.querySelectorAll('.gpu').length === 16, null, WAIT);
    assert.equal(await tokenPage.evaluate(() => sessionStorage.getItem('gpurm.token')), 's3cret');
    await tokenPage.locator('#queue .count').waitFor(WAIT);  // The daemon has a queue.
    assert.ok(authorized.some((url) => url.endsWith('/api/v1/gpu/allocations')), authorized.join('\n'));
    assert.ok(authorized.some((url) => url.includes('/api/v1/gpu/monitoring')), authorized.join('\n'));
    await context.close();
  });
});
