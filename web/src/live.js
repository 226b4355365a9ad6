// The dashboard's model of the cluster and how it is kept current.
//
// Readings come from GET /monitoring (all GPUs) and then from the SSE stream
// GET /events as they change. Allocations (and so who holds each GPU) and the
// cluster summary are polled, since allocations are not events. When the
// stream is unavailable (an old daemon, a proxy that buffers, a network
// hiccup) /monitoring is polled too, so the page stays current either way.
import { API, ApiError, apiFetch, getJson, readEventStream } from './api.js';
import { parseTime } from './format.js';

const HISTORY_SECONDS = 3600;

export class Live {
  constructor({ pollMs = 3000, resyncMs = 30000 } = {}) {
    this.pollMs = pollMs;
    this.resyncMs = resyncMs;
    this.nodes = [];  // [{node_name, gpus: [gpu]}] in the daemon's order.
    this.gpus = new Map();  // uuid -> gpu (the objects in this.nodes).
    this.allocations = [];
    this.status = null;
    this.queue = { supported: null, entries: [] };  // supported: true, false or null (not known yet).
    this.history = new Map();  // uuid -> [{t, utilization, memory_used_gb, temperature_c, power_w}]
    this.historyLoaded = false;
    this.connection = { state: 'connecting', detail: '' };
    this.error = '';  // Last polling error, shown in the header.
    this.serverOffsetMs = 0;  // Server clock minus ours, from the answers' timestamps.
    this.intervalSeconds = null;
    this.listeners = new Set();
    this.lastEvent = null;
    this.flash = new Set();  // uuids that changed since the last render.
    this.streaming = false;
    this.streamRetryMs = 5000;
    // Passes may overlap (the poll timer, an event, a user action): only the
    // newest pass that finished applies its answers.
    this.passesStarted = 0;
    this.newestApplied = 0;
    this.monitoringDue = true;
    this.lastResync = 0;
    this.stopped = false;
    this.abort = new AbortController();
  }

  // fn(live) after every change; returns an unsubscribe function.
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  notify() {
    for (const fn of this.listeners) fn(this);
  }

  now() {
    return Date.now() + this.serverOffsetMs;
  }

  async start() {
    await this.discover();
    this.pollLoop();
    this.streamLoop();
  }

  stop() {
    this.stopped = true;
    this.abort.abort();
  }

  // Optional endpoints are found in the daemon's OpenAPI document, so the
  // page does not probe (and log 404s) for what an older daemon lacks.
  // queue.supported stays null (not known) while the document cannot be read
  // (a daemon that wants a token, or one that does not answer); polling asks
  // again until it is known.
  async discover() {
    try {
      const doc = await getJson('/api/v1/openapi.json', { signal: this.abort.signal });
      this.queue.supported = Boolean(doc?.paths?.['/queue']);
    } catch {
      this.queue.supported = null;
    }
  }

  // Polls allocations and the summary every pollMs, and /monitoring when the
  // stream is not live, when an event asked for it, or every resyncMs.
  async pollLoop() {
    while (!this.stopped) {
      await this.refresh();
      await sleep(this.pollMs, this.abort.signal);
    }
  }

  // One polling pass; also called right after the page changes something.
  async refresh() {
    const signal = this.abort.signal;
    const pass = ++this.passesStarted;
    const wantMonitoring =
      this.monitoringDue ||
      this.connection.state !== 'live' ||
      Date.now() - this.lastResync >= this.resyncMs;
    if (this.queue.supported === null) await this.discover();
    try {
      const [allocations, status, monitoring, queue] = await Promise.all([
        getJson(`${API}/allocations`, { signal }),
        getJson(`${API}/status`, { signal }),
        wantMonitoring ? getJson(this.monitoringPath(), { signal }) : null,
        this.queue.supported ? getJson(`${API}/queue`, { signal }) : null,
      ]);
      if (pass < this.newestApplied) return;
      this.newestApplied = pass;
      this.allocations = allocations.allocations ?? [];
      this.status = status;
      this.syncClock(status.timestamp);
      if (monitoring) {
        this.applyMonitoring(monitoring);
        this.monitoringDue = false;
        this.lastResync = Date.now();
      }
      if (queue) this.queue.entries = queueEntries(queue);
      this.error = '';
      if (this.connection.state === 'offline' || this.connection.state === 'auth') {
        this.setConnection(this.streaming ? 'live' : 'polling');
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof ApiError && error.status === 401) {
        this.setConnection('auth', 'sign in to see the cluster');
      } else if (error instanceof ApiError) {
        this.error = `${error.status}: ${error.message}`;
      } else {
        this.setConnection('offline', 'the daemon does not answer; retrying');
      }
    }
    this.notify();
  }

  monitoringPath() {
    if (!this.historyLoaded) return `${API}/monitoring?window=0`;
    // Only the samples since the newest one we hold (one second of overlap;
    // duplicates are dropped by timestamp).
    let newest = 0;
    for (const points of this.history.values()) {
      if (points.length) newest = Math.max(newest, points[points.length - 1].t);
    }
    return newest
      ? `${API}/monitoring?since=${Math.max(0, Math.floor(newest / 1000) - 1)}`
      : `${API}/monitoring?window=${HISTORY_SECONDS}`;
  }

  // Loads the last hour of samples of every GPU (once; later polls extend it).
  async loadHistory() {
    if (this.historyLoaded) return;
    const monitoring = await getJson(`${API}/monitoring?window=${HISTORY_SECONDS}`, {
      signal: this.abort.signal,
    });
    this.historyLoaded = true;
    this.applyMonitoring(monitoring);
    this.notify();
  }

  syncClock(iso) {
    const server = parseTime(iso);
    if (server !== null) this.serverOffsetMs = server - Date.now();
  }

  applyMonitoring(monitoring) {
    this.intervalSeconds = monitoring.interval_seconds ?? this.intervalSeconds;
    const nodes = [];
    const gpus = new Map();
    for (const node of monitoring.nodes ?? []) {
      const list = [];
      // A GPU in MIG mode lists its MIG devices (mig_devices): they follow it
      // here, as cards of their own.
      for (const reading of flattenMig(node.gpus ?? [])) {
        const gpu = { ...reading, node_name: node.node_name };
        delete gpu.history;
        delete gpu.mig_devices;
        const previous = this.gpus.get(gpu.uuid);
        if (previous && changedReading(previous, gpu)) this.flash.add(gpu.uuid);
        gpus.set(gpu.uuid, gpu);
        list.push(gpu);
        if (this.historyLoaded) this.addHistory(gpu.uuid, reading.history ?? []);
      }
      nodes.push({ node_name: node.node_name, gpus: list });
    }
    this.nodes = nodes;
    this.gpus = gpus;
  }

  addHistory(uuid, samples) {
    const points = this.history.get(uuid) ?? [];
    for (const sample of samples) {
      const t = parseTime(sample.timestamp);
      if (t === null) continue;
      const point = {
        t,
        utilization: sample.utilization,
        memory_used_gb: sample.memory_used_gb,
        temperature_c: sample.temperature_c,
        power_w: sample.power_w,
      };
      // Samples arrive in time order; equal timestamps are the same sample.
      const last = points[points.length - 1];
      if (!last || t > last.t) points.push(point);
      else if (t === last.t) points[points.length - 1] = point;
    }
    const oldest = this.now() - HISTORY_SECONDS * 1000;
    while (points.length && points[0].t < oldest) points.shift();
    this.history.set(uuid, points);
  }

  setConnection(state, detail = '') {
    this.connection = { state, detail };
  }

  // Keeps one SSE connection open; on failure falls back to polling and
  // retries (after the server's retry: delay; after a minute when the
  // daemon has no stream at all).
  async streamLoop() {
    const signal = this.abort.signal;
    while (!this.stopped) {
      let waitMs = this.streamRetryMs;
      try {
        const response = await apiFetch(`${API}/events`, {
          headers: { Accept: 'text/event-stream' },
          signal,
        });
        const type = response.headers.get('Content-Type') ?? '';
        if (response.ok && response.body && type.startsWith('text/event-stream')) {
          this.streaming = true;
          this.setConnection('live', 'events stream');
          // Events may have been missed while disconnected.
          this.monitoringDue = true;
          this.notify();
          await readEventStream(
            response.body,
            (message) => this.onStreamMessage(message),
            (ms) => {
              this.streamRetryMs = ms;
            },
          );
          this.streaming = false;
          this.setConnection('polling', 'the events stream ended; reconnecting');
        } else {
          await response.body?.cancel();
          if (response.status === 404) {
            waitMs = 60000;
            this.setConnection('polling', 'this daemon has no events stream');
          } else if (response.status === 401) {
            this.setConnection('auth', 'sign in to see the cluster');
          } else {
            this.setConnection('polling', `events stream: HTTP ${response.status}`);
          }
        }
      } catch (error) {
        this.streaming = false;
        if (signal.aborted) return;
        this.setConnection('polling', `events stream: ${error.message}`);
      }
      this.notify();
      await sleep(waitMs, signal);
    }
  }

  onStreamMessage({ event, data }) {
    if (event === 'dropped' || event === 'gpu_added' || event === 'gpu_removed') {
      // Lost events or a changed inventory: reload the whole picture.
      this.monitoringDue = true;
      this.refresh();
      return;
    }
    if (event !== 'change' && event !== 'health') return;
    let payload;
    try {
      payload = JSON.parse(data);
    } catch {
      return;
    }
    const gpu = this.gpus.get(payload.uuid);
    if (!gpu) {
      this.monitoringDue = true;
      return;
    }
    const current = payload.current ?? {};
    for (const key of [
      'utilization',
      'memory_used_gb',
      'memory_total_gb',
      'temperature_c',
      'power_w',
      'healthy',
      'health_reason',
    ]) {
      // No utilization where the device gives none (MIG): it stays unavailable.
      if (key === 'utilization' && gpu.utilization_available === false) continue;
      if (key in current) gpu[key] = current[key];
    }
    if (this.historyLoaded) this.addHistory(gpu.uuid, [{ ...current, timestamp: payload.timestamp }]);
    this.syncClock(payload.timestamp);
    this.lastEvent = payload;
    this.flash.add(gpu.uuid);
    this.notify();
  }

  // Active grants by GPU uuid: [{allocation, grant}].
  holders() {
    const byGpu = new Map();
    for (const allocation of this.allocations) {
      for (const grant of allocation.gpus ?? []) {
        const list = byGpu.get(grant.gpu_uuid) ?? [];
        list.push({ allocation, grant });
        byGpu.set(grant.gpu_uuid, list);
      }
    }
    return byGpu;
  }
}

// Each GPU of a /monitoring node followed by its MIG devices.
export function flattenMig(readings) {
  const out = [];
  for (const reading of readings) {
    out.push(reading);
    for (const mig of reading.mig_devices ?? []) out.push({ ...mig, mig_parent_uuid: mig.mig_parent_uuid ?? reading.uuid });
  }
  return out;
}

function changedReading(a, b) {
  return (
    a.utilization !== b.utilization ||
    a.memory_used_gb !== b.memory_used_gb ||
    a.temperature_c !== b.temperature_c ||
    a.power_w !== b.power_w ||
    a.healthy !== b.healthy
  );
}

// The queue's entries, whatever the list is called in the answer.
function queueEntries(answer) {
  if (Array.isArray(answer)) return answer;
  for (const key of ['queue', 'entries', 'requests', 'items']) {
    if (Array.isArray(answer?.[key])) return answer[key];
  }
  return [];
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
