// The dashboard with MIG devices (examples/dgx-h100-mig.yaml: GPUs 4 and 5 in
// MIG mode, six MIG devices): each MIG device is a card right after its
// GPU's, no utilization is shown as 0%, and an allocation of a MIG device
// shows on its card.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, launchBrowser, screenshot, startDaemon, watchConsole } from './support.mjs';

const WAIT = { timeout: 30000 };

describe('dashboard with MIG devices', () => {
  let daemon;
  let browser;
  let page;
  let problems;

  before(async () => {
    daemon = await startDaemon('dgx-h100-mig.yaml');
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    problems = watchConsole(page);
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
  });

  test('MIG devices follow their GPU, with utilization n/a, and show who holds them', async () => {
    await page.goto(daemon.base + '/');
    await page.waitForFunction(() => document.querySelectorAll('.gpu').length === 14, null, WAIT);
    const monitoring = (await api(daemon, 'GET', '/monitoring?window=0')).body;
    const gpus = monitoring.nodes[0].gpus;
    const expected = gpus.flatMap((g) => [g.uuid, ...g.mig_devices.map((m) => m.uuid)]);
    assert.equal(expected.length, 14);
    assert.deepEqual(await page.locator('.gpu').evaluateAll((els) => els.map((e) => e.dataset.uuid)), expected);

    const parent = page.locator(`.gpu[data-uuid="${gpus[4].uuid}"]`);
    assert.equal(await parent.getAttribute('data-state'), 'mig');
    const parentText = await parent.innerText();
    assert.ok(parentText.includes('util n/a (MIG mode)'), parentText);
    assert.ok(parentText.includes('MIG mode: granted as its MIG devices'), parentText);

    const device = gpus[5].mig_devices[1];
    const card = page.locator(`.gpu[data-uuid="${device.uuid}"]`);
    assert.equal(await card.getAttribute('data-mig-parent'), gpus[5].uuid);
    const text = await card.innerText();
    assert.ok(text.includes('GPU 5 · MIG'), text);
    assert.ok(text.includes('H100 MIG 1g.10gb'), text);
    assert.ok(text.includes('util n/a (MIG)'), text);
    assert.ok(!text.includes('util 0%'), text);

    // The best fit for 8 GB is a 1g.10gb; its card shows the holder.
    const allocated = await api(daemon, 'POST', '/allocate', { gpu_count: 1, memory_gb: 8 });
    assert.equal(allocated.status, 200, JSON.stringify(allocated.body));
    const uuid = allocated.body.gpus[0].gpu_uuid;
    assert.match(uuid, /^MIG-/);
    assert.equal(allocated.body.gpu_config.environment.CUDA_VISIBLE_DEVICES, uuid);
    await page.waitForSelector(`.gpu[data-uuid="${uuid}"][data-state="allocated"]`, WAIT);
    await screenshot(page, 'mig-dashboard.png');
    assert.deepEqual(problems, []);
  });
});
