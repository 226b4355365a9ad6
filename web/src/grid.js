// The cluster grid: one section per node, one card per GPU, coloured by
// utilization or by memory. Cards are kept per GPU uuid and updated in place,
// so focus, hover and a pending click survive live updates.
import { h, setChildren, setText } from './dom.js';
import { celsius, gb, heat, percent, watts } from './format.js';

// What a card's colour shows. Memory counts what is used or reserved,
// whichever is more (what the scheduler sees as taken).
// A ratio of null (no utilization: MIG devices, GPUs in MIG mode) is grey.
export const COLOUR_MODES = {
  utilization: { label: 'utilization', ratio: (gpu) => (utilizationAvailable(gpu) ? gpu.utilization : null) },
  memory: { label: 'memory', ratio: (gpu, reserved) => memoryPressure(gpu, reserved) },
};

function memoryPressure(gpu, reservedGb) {
  if (!gpu.memory_total_gb) return 0;
  return Math.max(gpu.memory_used_gb ?? 0, reservedGb) / gpu.memory_total_gb;
}

// GB reserved on a GPU by active grants: the whole GPU for an exclusive
// grant, else the shared slices added up (as the daemon counts it).
export function reservedGb(gpu, holders) {
  if (!holders?.length) return 0;
  if (holders.some(({ grant }) => grant.exclusive)) return gpu.memory_total_gb ?? 0;
  return holders.reduce((sum, { grant }) => sum + (grant.memory_gb ?? 0), 0);
}

// NVML gives no utilization for MIG devices nor for a GPU in MIG mode.
export function utilizationAvailable(gpu) {
  return gpu.utilization_available !== false && gpu.utilization !== null && gpu.utilization !== undefined;
}

// "util 42%", or why there is no figure (never 0%).
export function utilizationText(gpu) {
  if (utilizationAvailable(gpu)) return percent(gpu.utilization);
  if (gpu.mig_mode) return 'n/a (MIG mode)';
  return gpu.mig_profile ? 'n/a (MIG)' : 'n/a';
}

// What process accounting found worth a mark on the card: processes outside
// gpurm, and allocations whose processes use more than their grant here.
export function processMarks(gpu) {
  const marks = [];
  if (gpu.foreign_processes > 0) {
    marks.push(`${gpu.foreign_processes} process${gpu.foreign_processes === 1 ? '' : 'es'} outside gpurm`);
  }
  for (const use of gpu.allocation_usage ?? []) {
    if (use.over_grant) marks.push(`${use.allocation_id} over its grant (${gb(use.used_gb)} of ${gb(use.granted_gb)} GB)`);
  }
  return marks;
}

export function gpuState(gpu, holders) {
  // Its node's agent does not answer the controller: last known values, offered to nobody.
  if (gpu.state === 'lost') return 'lost';
  if (gpu.healthy === false) return 'unhealthy';
  if (gpu.state === 'mig') return 'mig';  // Granted only as its MIG devices.
  if (holders?.some(({ grant }) => grant.exclusive)) return 'allocated';
  if (holders?.length) return 'shared';
  return gpu.state === 'cordoned' ? 'cordoned' : 'free';
}

export class Grid {
  // onSelect(uuid) when a card is clicked or activated with the keyboard.
  constructor(root, onSelect) {
    this.root = root;
    this.onSelect = onSelect;
    this.sections = new Map();  // node name -> {section, title, summary, cards}
    this.cards = new Map();  // uuid -> card parts
    this.mode = 'utilization';
    this.selected = '';
  }

  render(live) {
    const holders = live.holders();
    const seenNodes = new Set();
    const seenGpus = new Set();
    const order = [];
    for (const node of live.nodes) {
      seenNodes.add(node.node_name);
      const section = this.section(node.node_name);
      order.push(section.el);
      const cards = [];
      for (const gpu of node.gpus) {
        seenGpus.add(gpu.uuid);
        const card = this.card(gpu.uuid);
        this.update(card, gpu, holders.get(gpu.uuid) ?? [], live.flash.has(gpu.uuid));
        cards.push(card.el);
      }
      syncOrder(section.grid, cards);
      this.updateSection(section, node, holders);
    }
    live.flash.clear();
    for (const [name, section] of this.sections) {
      if (!seenNodes.has(name)) {
        section.el.remove();
        this.sections.delete(name);
      }
    }
    for (const uuid of this.cards.keys()) if (!seenGpus.has(uuid)) this.cards.delete(uuid);
    syncOrder(this.root, order);
    if (!live.nodes.length) setChildren(this.root, h('p', { class: 'empty', text: emptyText(live) }));
  }

  section(name) {
    let section = this.sections.get(name);
    if (section) return section;
    const title = h('h3', { text: name });
    const summary = h('span', { class: 'node-summary' });
    const grid = h('div', { class: 'gpu-grid' });
    const el = h('section', { class: 'node', dataset: { node: name } },
      h('header', {}, title, summary), grid);
    section = { el, title, summary, grid };
    this.sections.set(name, section);
    return section;
  }

  updateSection(section, node, holders) {
    const types = new Map();
    let free = 0;
    for (const gpu of node.gpus) {
      const type = gpu.mig_mode ? `${gpu.gpu_type} in MIG mode` : gpu.gpu_type;
      types.set(type, (types.get(type) ?? 0) + 1);
      if (gpuState(gpu, holders.get(gpu.uuid)) === 'free') free++;
    }
    const kinds = [...types].map(([type, n]) => `${n} × ${type}`).join(', ');
    setText(section.summary, node.lost ? `${kinds} · LOST: ${node.lost_reason ?? 'agent not answering'}` :
      `${kinds} · ${free} free`);
    section.el.classList.toggle('lost', Boolean(node.lost));
  }

  card(uuid) {
    let card = this.cards.get(uuid);
    if (card) return card;
    const parts = {
      index: h('span', { class: 'gpu-index' }),
      type: h('span', { class: 'gpu-type' }),
      health: h('span', { class: 'health' }),
      name: h('div', { class: 'gpu-name' }),
      utilFill: h('span', { class: 'fill' }),
      utilLabel: h('span', { class: 'meter-label' }),
      memUsed: h('span', { class: 'fill used' }),
      memReserved: h('span', { class: 'fill reserved' }),
      memLabel: h('span', { class: 'meter-label' }),
      temperature: h('span', { class: 'temperature' }),
      power: h('span', { class: 'power' }),
      holder: h('div', { class: 'holder' }),
      marks: h('div', { class: 'marks' }),
    };
    const el = h(
      'article',
      {
        class: 'gpu',
        tabindex: '0',
        role: 'button',
        dataset: { uuid },
        on: {
          click: () => this.onSelect(uuid),
          keydown: (event) => {
            if (event.key === 'Enter' || event.key === ' ') {
              event.preventDefault();
              this.onSelect(uuid);
            }
          },
          animationend: () => el.classList.remove('flash'),
        },
      },
      h('div', { class: 'gpu-head' }, parts.index, parts.type, parts.health),
      parts.name,
      h('div', { class: 'meter util', title: 'utilization' }, parts.utilFill, parts.utilLabel),
      h('div', { class: 'meter mem', title: 'memory: used by processes / reserved by allocations / total' },
        parts.memReserved, parts.memUsed, parts.memLabel),
      h('div', { class: 'vitals' }, parts.temperature, parts.power),
      parts.holder,
      parts.marks,
    );
    card = { el, ...parts };
    this.cards.set(uuid, card);
    return card;
  }

  update(card, gpu, holders, flash) {
    const reserved = reservedGb(gpu, holders);
    const state = gpuState(gpu, holders);
    const total = gpu.memory_total_gb || 0;
    const ratio = COLOUR_MODES[this.mode].ratio(gpu, reserved);
    const [colour, dark] = ratio === null ? ['rgb(238,238,238)', false] : heat(ratio);
    card.el.style.backgroundColor = colour;
    const mig = gpu.mig_parent_uuid ? ' mig-device' : '';
    card.el.className = `gpu state-${state}${mig}${dark ? ' dark' : ''}${this.selected === gpu.uuid ? ' selected' : ''}`;
    if (flash) card.el.classList.add('flash');
    card.el.dataset.state = state;
    card.el.dataset.node = gpu.node_name;
    card.el.dataset.index = String(gpu.index);
    card.el.setAttribute('aria-label', `${gpu.node_name} GPU ${gpu.index}, ${gpu.gpu_type}, ${state}`);
    // A MIG device's card follows its GPU's and carries the GPU's index.
    setText(card.index, gpu.mig_parent_uuid ? `GPU ${gpu.index} · MIG` : `GPU ${gpu.index}`);
    if (gpu.mig_parent_uuid) card.el.dataset.migParent = gpu.mig_parent_uuid;
    setText(card.type, gpu.gpu_type ?? '');
    setText(card.health, gpu.healthy === false ? 'unhealthy' : 'healthy');
    card.health.className = `health ${gpu.healthy === false ? 'bad' : 'ok'}`;
    card.health.title = gpu.health_reason || '';
    setText(card.name, gpu.name ?? '');
    card.utilFill.style.width = utilizationAvailable(gpu) ? percent(gpu.utilization) : '0';
    setText(card.utilLabel, `util ${utilizationText(gpu)}`);
    card.memUsed.style.width = total ? `${Math.min(100, ((gpu.memory_used_gb ?? 0) / total) * 100)}%` : '0';
    card.memReserved.style.width = total ? `${Math.min(100, (reserved / total) * 100)}%` : '0';
    setText(card.memLabel, `${gb(gpu.memory_used_gb)} used · ${gb(reserved)} reserved / ${gb(total)} GB`);
    setText(card.temperature, celsius(gpu.temperature_c));
    setText(card.power, watts(gpu.power_w, gpu.power_limit_w));
    this.updateHolder(card.holder, gpu, holders, state);
    const marks = processMarks(gpu);
    setChildren(card.marks, marks.map((text) => h('span', { class: 'mark', text })));
    card.el.classList.toggle('marked', marks.length > 0);
  }

  updateHolder(el, gpu, holders, state) {
    const key = holders.map(({ allocation, grant }) => `${allocation.allocation_id}:${grant.memory_gb}`).join(',') +
      `|${state}|${gpu.health_reason ?? ''}`;
    if (el.dataset.key === key) return;
    el.dataset.key = key;
    if (state === 'unhealthy' && !holders.length) {
      setChildren(el, h('span', { class: 'reason', text: gpu.health_reason || 'unhealthy' }));
    } else if (!holders.length) {
      const text = state === 'cordoned' ? 'cordoned' : state === 'lost' ? 'lost: its agent is not answering' :
        state === 'mig' ? 'MIG mode: granted as its MIG devices' : 'free';
      setChildren(el, h('span', { class: 'free', text }));
    } else {
      setChildren(el, holders.map(({ allocation, grant }) => h('span', {
        class: 'holding',
        title: `${allocation.allocation_id} (${grant.exclusive ? 'whole GPU' : `${gb(grant.memory_gb)} GB slice`})`,
        dataset: { allocation: allocation.allocation_id },
      }, h('b', { text: allocation.owner }), ` · ${allocation.allocation_id}`,
      grant.exclusive ? '' : ` · ${gb(grant.memory_gb)} GB`)));
    }
  }

  setMode(mode) {
    this.mode = mode;
  }

  setSelected(uuid) {
    this.selected = uuid;
  }
}

function emptyText(live) {
  if (live.connection.state === 'connecting') return 'Loading…';
  if (live.connection.state === 'auth') return 'Sign in to see the cluster.';
  if (live.connection.state === 'offline') return 'The daemon does not answer.';
  return 'No GPUs in the inventory.';
}

// Makes parent's children exactly `children`, in order, moving only what
// is out of place.
function syncOrder(parent, children) {
  children.forEach((child, i) => {
    if (parent.children[i] !== child) parent.insertBefore(child, parent.children[i] ?? null);
  });
  while (parent.children.length > children.length) parent.lastElementChild.remove();
}
