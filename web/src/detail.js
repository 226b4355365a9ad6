// One GPU in detail: its readings, who holds it, and charts of the last hour
// (utilization, memory, temperature) from /monitoring history, extended live.
import uPlot from 'uplot';
import { h, setChildren, setText } from './dom.js';
import { celsius, gb, watts } from './format.js';
import { gpuState, reservedGb, utilizationText } from './grid.js';

const WINDOW_SECONDS = 3600;
// The x axis spans the last hour, or less while the history is shorter
// (a freshly started daemon), but never less than this.
const MIN_SPAN_SECONDS = 120;

const CHARTS = [
  {
    key: 'utilization',
    title: 'Utilization (%)',
    series: [{ label: 'utilization %', stroke: '#1e88e5', fill: 'rgba(30,136,229,0.12)', value: (p) => (p.utilization === null || p.utilization === undefined ? null : p.utilization * 100) }],
    range: () => [0, 100],
  },
  {
    key: 'memory',
    title: 'Memory (GB) · used; total dashed',
    series: [
      { label: 'used GB', stroke: '#8e24aa', fill: 'rgba(142,36,170,0.12)', value: (p) => p.memory_used_gb },
      { label: 'total GB', stroke: '#9e9e9e', dash: [4, 4], value: (p, gpu) => gpu.memory_total_gb },
    ],
    range: (gpu) => [0, Math.max(1, gpu.memory_total_gb ?? 1)],
  },
  {
    key: 'temperature',
    title: 'Temperature (°C)',
    series: [{ label: '°C', stroke: '#e53935', value: (p) => p.temperature_c }],
    range: (gpu, points) => {
      const values = points.map((p) => p.temperature_c).filter((v) => v !== null && v !== undefined);
      if (!values.length) return [0, 100];
      return [Math.max(0, Math.floor(Math.min(...values) / 10) * 10 - 10), Math.ceil(Math.max(...values) / 10) * 10 + 10];
    },
  },
];

export class GpuDetail {
  // root: the (initially hidden) panel element; onClose() when dismissed.
  constructor(root, onClose) {
    this.root = root;
    this.onClose = onClose;
    this.uuid = '';
    this.charts = [];
    this.resize = new ResizeObserver(() => this.fit());
  }

  async open(uuid, live) {
    this.close(false);
    this.uuid = uuid;
    this.title = h('h2');
    this.facts = h('dl', { class: 'facts' });
    this.holders = h('div', { class: 'detail-holders' });
    this.note = h('p', { class: 'note', text: 'Loading the last hour…' });
    const chartBox = h('div', { class: 'charts' });
    setChildren(
      this.root,
      h('header', {}, this.title,
        h('button', { class: 'close', type: 'button', 'aria-label': 'Close', text: '×', on: { click: () => this.close() } })),
      this.facts,
      this.holders,
      this.note,
      chartBox,
    );
    this.root.hidden = false;
    this.charts = CHARTS.map((spec) => {
      const box = h('figure', { class: 'chart', dataset: { chart: spec.key } }, h('figcaption', { text: spec.title }));
      chartBox.append(box);
      const plot = new uPlot(
        {
          width: Math.max(200, box.clientWidth || 400),
          height: 140,
          legend: { show: false },
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true }, y: { range: () => this.yRange(spec) } },
          axes: [{ stroke: '#555', grid: { stroke: '#eee' } }, { stroke: '#555', grid: { stroke: '#eee' }, size: 44 }],
          series: [{}, ...spec.series.map((s) => ({ label: s.label, stroke: s.stroke, fill: s.fill, dash: s.dash, width: 1.5, spanGaps: true }))],
        },
        [[], ...spec.series.map(() => [])],
        box,
      );
      return { spec, plot, box };
    });
    this.resize.observe(chartBox);
    this.render(live);
    try {
      await live.loadHistory();
      this.note.remove();
    } catch (error) {
      setText(this.note, `History not available: ${error.message}`);
    }
  }

  yRange(spec) {
    return spec.range(this.gpu ?? {}, this.points ?? []);
  }

  close(notify = true) {
    this.resize.disconnect();
    for (const { plot } of this.charts) plot.destroy();
    this.charts = [];
    this.uuid = '';
    this.root.hidden = true;
    this.root.replaceChildren();
    if (notify) this.onClose();
  }

  fit() {
    for (const { plot, box } of this.charts) {
      const width = Math.max(200, box.clientWidth);
      if (plot.width !== width) plot.setSize({ width, height: 140 });
    }
  }

  render(live) {
    if (!this.uuid) return;
    const gpu = live.gpus.get(this.uuid);
    if (!gpu) {
      setText(this.note, 'This GPU is no longer in the inventory.');
      return;
    }
    const holders = live.holders().get(gpu.uuid) ?? [];
    const reserved = reservedGb(gpu, holders);
    setText(this.title, `${gpu.node_name} · GPU ${gpu.index}${gpu.mig_parent_uuid ? ' · MIG device' : ''} · ${gpu.gpu_type}`);
    setChildren(
      this.facts,
      fact('model', gpu.name),
      fact('uuid', gpu.uuid),
      fact('state', gpuState(gpu, holders)),
      fact('health', gpu.healthy === false ? `unhealthy: ${gpu.health_reason || 'no reason given'}` : 'healthy'),
      fact('utilization', utilizationText(gpu)),
      gpu.mig_profile ? fact('MIG profile', gpu.mig_profile) : null,
      gpu.mig_parent_uuid ? fact('MIG device of', gpu.mig_parent_uuid) : null,
      fact('memory', `${gb(gpu.memory_used_gb)} GB used · ${gb(reserved)} GB reserved · ${gb(gpu.memory_total_gb)} GB total`),
      fact('temperature', celsius(gpu.temperature_c)),
      fact('power', watts(gpu.power_w, gpu.power_limit_w)),
      gpu.processes?.length
        ? fact('processes', gpu.processes.map((p) => `pid ${p.pid} (${gb(p.memory_used_gb)} GB)`).join(', '))
        : null,
    );
    setChildren(
      this.holders,
      holders.length
        ? holders.map(({ allocation, grant }) =>
            h('p', {}, 'Held by ', h('b', { text: allocation.owner }), ` (${allocation.allocation_id}, `,
              grant.exclusive ? 'whole GPU)' : `${gb(grant.memory_gb)} GB slice)`))
        : h('p', { text: 'Not held by any allocation.' }),
    );
    this.gpu = gpu;
    this.points = [...(live.history.get(gpu.uuid) ?? [])];
    // The current reading, so lines reach "now" between samples.
    const now = live.now();
    const last = this.points[this.points.length - 1];
    if (!last || now > last.t) this.points.push({ ...gpu, t: now });
    const xs = this.points.map((p) => p.t / 1000);
    const max = now / 1000;
    const min = Math.min(max - MIN_SPAN_SECONDS, Math.max(max - WINDOW_SECONDS, xs[0]));
    for (const { spec, plot } of this.charts) {
      const data = [xs, ...spec.series.map((s) => this.points.map((p) => s.value(p, gpu) ?? null))];
      plot.batch(() => {
        plot.setData(data, false);
        plot.setScale('x', { min, max });
      });
    }
  }
}

function fact(term, value) {
  return [h('dt', { text: term }), h('dd', { text: value ?? '–' })];
}
