// Runs the real daemon and Debian's Chromium for the dashboard tests.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const artifacts = process.env.GPURM_UI_ARTIFACTS ?? join(repo, 'build/ui-artifacts');

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The daemon on a free port with a copy of examples/cluster-3node.yaml (or
// another file of examples/; a copy, so a test can edit the readings: the
// static provider re-reads it every sample), a one-second monitor interval
// and a temporary data dir.
export async function startDaemon(example = 'cluster-3node.yaml') {
  const binary = process.env.GPURM_BIN ?? join(repo, 'build/gpurm');
  const dir = mkdtempSync(join(tmpdir(), 'gpurm-ui-'));
  const inventory = join(dir, 'cluster.yaml');
  writeFileSync(inventory, readFileSync(join(repo, 'examples', example)));
  const config = join(dir, 'gpu_config.yaml');
  writeFileSync(config, 'monitor_update_interval: 1\nresource_change_threshold: 0.05\nlog_level: "INFO"\n');
  const port = await freePort();
  const child = spawn(binary, [
    'serve', '--config', config, '--inventory', inventory, '--listen', `127.0.0.1:${port}`,
    '--data-dir', join(dir, 'data'), '--log-dir', join(dir, 'logs'),
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const base = `http://127.0.0.1:${port}`;
  // Bounded wait for readiness (the first sample loads the inventory).
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`gpurm exited with ${child.exitCode}:\n${output}`);
    try {
      const response = await fetch(`${base}/api/v1/gpu/health`);
      if (response.status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (attempt >= 300) throw new Error(`gpurm did not become ready:\n${output}`);
    await sleep(100);
  }
  return {
    base,
    api: `${base}/api/v1/gpu`,
    inventory,
    output: () => output,
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Headless Debian Chromium. Playwright gives it a new empty profile
// (--user-data-dir in a fresh temporary directory); the flags keep it off
// the network, which this machine does not have.
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

// Console errors and warnings, and uncaught exceptions, of a page.
export function watchConsole(page) {
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') {
      problems.push(`${message.type()}: ${message.text()} (${message.location().url ?? ''})`);
    }
  });
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  return problems;
}

export async function screenshot(page, name, options = {}) {
  mkdirSync(artifacts, { recursive: true });
  const path = join(artifacts, name);
  await page.screenshot({ path, fullPage: true, ...options });
  return path;
}

export async function api(daemon, method, path, body) {
  const response = await fetch(`${daemon.api}${path}`, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: await response.json() };
}
