// deploy/grafana/gpurm-dashboard.json against the real daemon's /metrics:
// every metric a panel queries is exported, and the JSON is a well-formed
// dashboard (unique panel ids, panels inside the 24-column grid, every query
// with a refId and the data source variable).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { api, repo, startDaemon } from './support.mjs';

const dashboard = JSON.parse(readFileSync(join(repo, 'deploy/grafana/gpurm-dashboard.json'), 'utf8'));

function panels(list = dashboard.panels) {
  return list.flatMap((p) => [p, ...panels(p.panels ?? [])]);
}

function expressions() {
  const exprs = panels().flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  for (const variable of dashboard.templating.list) {
    if (variable.type === 'query') exprs.push(variable.definition);
  }
  return exprs;
}

let daemon;
before(async () => {
  daemon = await startDaemon();
});
after(async () => {
  await daemon?.stop();
});

test('every metric the Grafana dashboard queries is exported by the daemon', async () => {
  // An allocation and a few requests, so that every family has samples.
  const made = await api(daemon, 'POST', '/allocate', { gpu_count: 1, gpu_type: 'T4', owner: 'grafana' });
  assert.equal(made.status, 200);
  await api(daemon, 'GET', '/status');
  const text = await (await fetch(`${daemon.base}/metrics`)).text();
  const exported = new Set(
    text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/[{ ]/)[0]),
  );
  const used = new Set(expressions().flatMap((e) => e.match(/gpurm_[a-z_]+/g) ?? []));
  assert.ok(used.size >= 15, [...used].join(' '));
  const missing = [...used].filter((name) => !exported.has(name));
  assert.deepEqual(missing, [], `exported: ${[...exported].join(' ')}`);
});

test('the dashboard JSON is well formed', () => {
  assert.equal(dashboard.uid, 'gpurm-gpus');
  const all = panels();
  const ids = all.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const panel of all) {
    const { x, w } = panel.gridPos;
    assert.ok(x >= 0 && w > 0 && x + w <= 24, `${panel.title} fits the grid`);
    const refIds = (panel.targets ?? []).map((t) => t.refId);
    assert.equal(new Set(refIds).size, refIds.length, `${panel.title}: refIds are unique`);
    for (const t of panel.targets ?? []) {
      assert.equal(t.datasource.uid, '${datasource}', `${panel.title} uses the data source variable`);
      assert.ok(t.expr.length > 0);
    }
  }
  assert.deepEqual(dashboard.templating.list.map((v) => v.name), ['datasource', 'instance', 'node']);
});
