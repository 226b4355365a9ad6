// The request queue (GET /queue) where the daemon has one; otherwise a note.
import { h, setChildren } from './dom.js';

const MAX_COLUMNS = 8;

// What the panel says when it shows no queue: `supported` is false when the
// daemon's API document has no queue, null while the document could not be
// read (sign-in pending, daemon offline), when nothing is known either way.
export function queueNote(supported) {
  if (supported === null) {
    return 'The queue shows here once the daemon answers (sign in if it asks for a token).';
  }
  return 'This daemon has no request queue (GET /api/v1/gpu/queue is not in its API document): a request that does not fit now is refused with the reasons.';
}

export class QueuePanel {
  constructor(root) {
    this.root = root;
    this.key = '';
  }

  render(live) {
    const { supported, entries } = live.queue;
    const key = supported ? JSON.stringify(entries) : String(supported);
    if (key === this.key) return;
    this.key = key;
    const title = h('h2', {}, 'Queue ', supported ? h('span', { class: 'count', text: `(${entries.length})` }) : null);
    if (!supported) {
      setChildren(this.root, title, h('p', { class: 'note', text: queueNote(supported) }));
      return;
    }
    if (!entries.length) {
      setChildren(this.root, title, h('p', { class: 'empty', text: 'No waiting requests.' }));
      return;
    }
    // Columns: the scalar fields the entries have (those of a nested object,
    // such as the request, too), in first-seen order.
    const rows = entries.map(flatten);
    const columns = [];
    for (const row of rows) {
      for (const name of row.keys()) {
        if (columns.length < MAX_COLUMNS && !columns.includes(name)) columns.push(name);
      }
    }
    setChildren(this.root, title, h('table', { class: 'queue' },
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { text: c.replaceAll('_', ' ') })))),
      h('tbody', {}, rows.map((row) => h('tr', {}, columns.map((c) => h('td', { text: row.get(c) ?? '' })))))));
  }
}

// {a: 1, request: {gpu_count: 2}} -> Map {a => 1, "request.gpu_count" => 2}.
function flatten(entry) {
  const out = new Map();
  for (const [name, value] of Object.entries(entry ?? {})) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [inner, v] of Object.entries(value)) {
        if (v === null || typeof v !== 'object') out.set(`${name}.${inner}`, String(v));
      }
    } else if (!Array.isArray(value)) {
      out.set(name, value === null ? '' : String(value));
    }
  }
  return out;
}
