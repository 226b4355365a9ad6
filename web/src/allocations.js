// Active allocations with owner, GPUs, age and lease, and a release button
// that asks for a second click before it releases.
import { API, apiCall } from './api.js';
import { h, setChildren, setText } from './dom.js';
import { duration, gb, parseTime } from './format.js';

export class AllocationTable {
  // onReleased() after a release succeeded (to refresh at once).
  constructor(root, onReleased) {
    this.root = root;
    this.onReleased = onReleased;
    this.rows = new Map();  // allocation id -> row parts
    this.armed = '';  // The id whose release button awaits confirmation.
    this.body = h('tbody');
    this.empty = h('p', { class: 'empty', text: 'No active allocations.' });
    this.count = h('span', { class: 'count' });
    setChildren(
      root,
      h('h2', {}, 'Allocations ', this.count),
      h('table', { class: 'allocations' },
        h('thead', {}, h('tr', {}, ['Allocation', 'Owner', 'GPUs', 'Age', 'Lease', ''].map((t) => h('th', { text: t })))),
        this.body),
      this.empty,
    );
  }

  render(live) {
    const now = live.now();
    const seen = new Set();
    const order = [];
    for (const allocation of live.allocations) {
      seen.add(allocation.allocation_id);
      const row = this.row(allocation);
      this.update(row, allocation, now);
      order.push(row.el);
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.el.remove();
        this.rows.delete(id);
      }
    }
    order.forEach((el, i) => {
      if (this.body.children[i] !== el) this.body.insertBefore(el, this.body.children[i] ?? null);
    });
    setText(this.count, `(${live.allocations.length})`);
    this.empty.hidden = live.allocations.length > 0;
  }

  row(allocation) {
    const id = allocation.allocation_id;
    let row = this.rows.get(id);
    if (row) return row;
    const release = h('button', { type: 'button', class: 'release', text: 'Release' });
    const message = h('span', { class: 'row-message', role: 'status' });
    row = {
      el: h('tr', { dataset: { allocation: id } }),
      id: h('td', { class: 'mono', text: id }),
      owner: h('td', { class: 'owner' }),
      gpus: h('td', { class: 'gpus' }),
      age: h('td', { class: 'age' }),
      lease: h('td', { class: 'lease' }),
      release,
      message,
    };
    release.addEventListener('click', () => this.onReleaseClick(id, row));
    row.el.append(row.id, row.owner, row.gpus, row.age, row.lease, h('td', { class: 'actions' }, release, message));
    this.rows.set(id, row);
    return row;
  }

  update(row, allocation, now) {
    setText(row.owner, allocation.owner);
    setText(row.gpus, describeGrants(allocation.gpus ?? []));
    const created = parseTime(allocation.created_at);
    setText(row.age, created === null ? '–' : duration((now - created) / 1000));
    row.age.title = allocation.created_at ?? '';
    const expires = parseTime(allocation.lease_expires_at);
    if (expires === null) {
      setText(row.lease, 'no lease');
      row.lease.className = 'lease none';
    } else {
      const left = (expires - now) / 1000;
      setText(row.lease, left > 0 ? `${duration(left)} left` : 'expiring');
      row.lease.className = `lease${left < 60 ? ' short' : ''}`;
    }
    row.lease.title = allocation.lease_ttl_seconds
      ? `renewed by heartbeats every < ${allocation.lease_ttl_seconds}s; expires ${allocation.lease_expires_at}`
      : '';
    const armed = this.armed === allocation.allocation_id;
    setText(row.release, armed ? 'Confirm release' : 'Release');
    row.release.classList.toggle('armed', armed);
  }

  async onReleaseClick(id, row) {
    if (this.armed !== id) {
      this.armed = id;
      setText(row.release, 'Confirm release');
      row.release.classList.add('armed');
      setText(row.message, '');
      return;
    }
    this.armed = '';
    row.release.disabled = true;
    setText(row.release, 'Releasing…');
    try {
      const answer = await apiCall(`${API}/allocations/${encodeURIComponent(id)}`, { method: 'DELETE' });
      if (answer.ok) {
        setText(row.message, 'released');
        this.onReleased();
        return;
      }
      setText(row.message, answer.status === 403
        ? `not allowed: ${answer.body?.error?.message ?? 'forbidden'}`
        : answer.body?.error?.message ?? `HTTP ${answer.status}`);
    } catch (error) {
      setText(row.message, error.message);
    }
    row.release.disabled = false;
    setText(row.release, 'Release');
  }
}

// "gpu-node-2: 0, 1 (whole)" / "gpu-node-1: 2 (8.0 GB)" / "dgx: 5 (MIG device)";
// one part per node.
// A MIG device's grant: NVML's "MIG-..." uuid, or Kubernetes' nvidia.com/mig-<profile>.
function isMigGrant(grant) {
  const uuid = grant.gpu_uuid ?? '';
  return uuid.startsWith('MIG-') || uuid.includes(':nvidia.com/mig-');
}

export function describeGrants(grants) {
  const byNode = new Map();
  for (const grant of grants) {
    const list = byNode.get(grant.node_name) ?? [];
    list.push(grant);
    byNode.set(grant.node_name, list);
  }
  return [...byNode]
    .map(([node, list]) => {
      const indices = list.map((g) => g.gpu_index).join(', ');
      const shared = list.filter((g) => !g.exclusive);
      let what = shared.length ? `${gb(shared.reduce((s, g) => s + g.memory_gb, 0))} GB shared` : 'whole';
      if (!shared.length && list.every(isMigGrant)) what = list.length > 1 ? 'MIG devices' : 'MIG device';
      return `${node}: ${indices} (${what})`;
    })
    .join('; ');
}
