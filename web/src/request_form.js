// The request form: checks a GPU request (POST /validate) or allocates it
// (POST /allocate), and says why a request does not fit and what would.
import { API, apiCall, token } from './api.js';
import { h, setChildren } from './dom.js';
import { gb } from './format.js';
import { describeGrants } from './allocations.js';

const OWNER_KEY = 'gpurm.owner';
// How long to wait before asking the daemon for its policies again after a
// failed answer.
const POLICY_RETRY_MS = 30000;

export class RequestForm {
  // onAllocated() after an allocation succeeded (to refresh at once).
  constructor(root, onAllocated) {
    this.root = root;
    this.onAllocated = onAllocated;
    this.types = h('datalist', { id: 'gpu-types' });
    this.nodes = h('datalist', { id: 'node-names' });
    this.result = h('div', { class: 'result', role: 'status', 'aria-live': 'polite' });
    // Filled from GET /policies, the daemon's list (see loadPolicies).
    this.policy = h('select', { name: 'policy', id: 'req-policy' }, h('option', { value: '', text: 'server default' }));
    this.policiesLoaded = false;
    this.policiesAskedAt = -Infinity;
    const input = (name, attrs) => h('input', { name, id: `req-${name}`, ...attrs });
    const field = (label, control, hint) =>
      h('label', { class: 'field', for: control.id }, h('span', { text: label }), control, hint ? h('small', { text: hint }) : null);
    const check = (name, label) =>
      h('label', { class: 'check' }, input(name, { type: 'checkbox' }), ` ${label}`);
    this.form = h(
      'form',
      { class: 'request', novalidate: true, on: { submit: (event) => event.preventDefault() } },
      h('div', { class: 'row' },
        field('GPUs', input('gpu_count', { type: 'number', min: '1', step: '1', value: '1', required: true })),
        field('GPU type', input('gpu_type', { type: 'text', list: 'gpu-types', placeholder: 'any', autocomplete: 'off' })),
        field('Memory per GPU (GB)', input('memory_gb', { type: 'number', min: '0', step: '0.5', value: '0' }))),
      h('div', { class: 'row' },
        field('Framework memory fraction', input('gpu_memory_fraction', { type: 'number', min: '0.05', max: '1', step: '0.05', value: '0.9' })),
        field('Lease (s)', input('lease_ttl_seconds', { type: 'number', min: '1', step: '1', placeholder: 'server default' })),
        field('Owner', input('owner', { type: 'text', placeholder: 'your name', autocomplete: 'off', value: localStorage.getItem(OWNER_KEY) ?? '' }),
          'with a token: its name')),
      h('div', { class: 'row' },
        field('Node', input('node_name', { type: 'text', list: 'node-names', placeholder: 'any', autocomplete: 'off' })),
        field('Policy', this.policy)),
      h('div', { class: 'row checks' },
        check('shared', 'share a GPU (memory slice)'),
        check('distributed_training', 'distributed training'),
        check('mixed_precision', 'mixed precision')),
      h('div', { class: 'buttons' },
        h('button', { type: 'button', class: 'validate', text: 'Check fit', on: { click: () => this.submit('validate') } }),
        h('button', { type: 'button', class: 'allocate primary', text: 'Allocate', on: { click: () => this.submit('allocate') } })),
      this.types,
      this.nodes,
    );
    setChildren(root, h('h2', { text: 'Request GPUs' }), this.form, this.result);
  }

  // Suggests the GPU types and nodes the cluster has, and offers the
  // daemon's placement policies once it answers.
  render(live) {
    if (!this.policiesLoaded && live.status && performance.now() - this.policiesAskedAt > POLICY_RETRY_MS) {
      this.loadPolicies();
    }
    const types = new Set();
    for (const node of live.nodes) for (const gpu of node.gpus) types.add(gpu.gpu_type);
    const key = [...types].join(',') + '|' + live.nodes.map((n) => n.node_name).join(',');
    if (key === this.optionsKey) return;
    this.optionsKey = key;
    setChildren(this.types, [...types].sort().map((t) => h('option', { value: t })));
    setChildren(this.nodes, live.nodes.map((n) => h('option', { value: n.node_name })));
  }

  // Lists the policies the daemon implements (GET /policies), the default
  // named on the "server default" entry and each one's description as its
  // tooltip. The form keeps no list of its own: until the daemon answers,
  // only "server default" is offered; a failed answer is retried later.
  async loadPolicies() {
    this.policiesAskedAt = performance.now();
    let answer;
    try {
      answer = await apiCall(`${API}/policies`);
    } catch {
      return;
    }
    if (!answer.ok || !Array.isArray(answer.body?.policies)) return;
    const { policies, default: serverDefault } = answer.body;
    const chosen = this.policy.value;
    setChildren(this.policy,
      h('option', { value: '', text: serverDefault ? `server default (${serverDefault})` : 'server default' }),
      policies.map((p) => h('option', { value: p.name, text: p.name, title: p.description ?? '' })));
    this.policy.value = policies.some((p) => p.name === chosen) ? chosen : '';
    this.policiesLoaded = true;
  }

  // The request body: only the fields that were set (the API rejects none of
  // these, and leaves the rest at its defaults).
  request() {
    const f = this.form.elements;
    const body = {
      gpu_count: Number(f.gpu_count.value || 1),
      memory_gb: Number(f.memory_gb.value || 0),
      gpu_memory_fraction: Number(f.gpu_memory_fraction.value || 0.9),
      shared: f.shared.checked,
      distributed_training: f.distributed_training.checked,
      mixed_precision: f.mixed_precision.checked,
    };
    const text = (name) => f[name].value.trim();
    if (text('gpu_type')) body.gpu_type = text('gpu_type');
    if (text('node_name')) body.node_name = text('node_name');
    if (text('policy')) body.policy = text('policy');
    if (text('owner')) body.owner = text('owner');
    if (text('lease_ttl_seconds')) body.lease_ttl_seconds = Number(text('lease_ttl_seconds'));
    return body;
  }

  async submit(action) {
    for (const el of this.form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    const body = this.request();
    localStorage.setItem(OWNER_KEY, body.owner ?? '');
    // With a token the daemon records its name as the owner; without one
    // nobody could tell whose GPUs these are, so the page asks for a name.
    if (action === 'allocate' && !body.owner && !token()) {
      this.showInvalid({ error: { field: 'owner', message: 'say who holds the GPUs (the daemon has no token to tell)' } });
      return;
    }
    this.form.setAttribute('aria-busy', 'true');
    setChildren(this.result, h('p', { class: 'pending', text: action === 'validate' ? 'Checking…' : 'Allocating…' }));
    try {
      const answer = await apiCall(`${API}/${action}`, { method: 'POST', body });
      if (answer.status === 400) this.showInvalid(answer.body);
      else if (action === 'validate' && answer.ok) this.showValidation(answer.body);
      else if (action === 'allocate' && answer.ok) {
        this.showAllocated(answer.body);
        this.onAllocated();
      } else this.showRefusal(answer.status, answer.body);
    } catch (error) {
      setChildren(this.result, h('p', { class: 'outcome error', text: `The daemon did not answer: ${error.message}` }));
    } finally {
      this.form.removeAttribute('aria-busy');
    }
  }

  showInvalid(body) {
    const error = body?.error ?? {};
    const input = error.field ? this.form.elements[error.field] : null;
    input?.setAttribute('aria-invalid', 'true');
    setChildren(this.result, h('p', { class: 'outcome error', dataset: { outcome: 'invalid' } },
      h('b', { text: 'Invalid request: ' }), error.field ? `${error.field}: ` : '', error.message ?? 'rejected'));
  }

  showValidation(body) {
    const outcome = body.possible_now ? 'fits' : body.possible_ever ? 'not-now' : 'never';
    const headline = {
      fits: 'Fits now.',
      'not-now': 'Does not fit now (it would on an emptier cluster).',
      never: 'Can never fit in this cluster.',
    }[outcome];
    setChildren(this.result,
      h('p', { class: `outcome ${outcome === 'fits' ? 'ok' : 'error'}`, dataset: { outcome } }, h('b', { text: headline }), ' ', body.message ?? ''),
      outcome === 'fits' ? null : explain(body));
  }

  showAllocated(body) {
    const allocation = body.allocation ?? {};
    const environment = body.gpu_config?.environment ?? {};
    setChildren(this.result,
      h('p', { class: 'outcome ok', dataset: { outcome: 'allocated' } },
        h('b', { text: `Allocated ${body.allocation_id}` }), ` to ${allocation.owner ?? 'you'}: `,
        describeGrants(body.gpus ?? [])),
      Object.keys(environment).length
        ? h('pre', { class: 'env', text: Object.entries(environment).map(([k, v]) => `${k}=${v}`).join('\n') })
        : null);
  }

  showRefusal(status, body) {
    const error = body?.error ?? {};
    const outcome = error.code === 'unschedulable_never' ? 'never' : error.code === 'unschedulable_now' ? 'not-now' : 'error';
    setChildren(this.result,
      h('p', { class: 'outcome error', dataset: { outcome } },
        h('b', { text: status === 403 ? 'Not allowed: ' : 'Cannot allocate: ' }), error.message ?? `HTTP ${status}`),
      explain(body ?? {}));
  }
}

// Per-node reasons and what would fit, from /validate or a refused /allocate.
function explain(body) {
  const reasons = body.reasons ?? [];
  const fit = body.would_fit;
  if (!reasons.length && !fit) return null;
  const available = Object.entries(fit?.gpu_types_available ?? {});
  return h('div', { class: 'explain' },
    reasons.length
      ? [h('h3', { text: 'Why, per node' }),
         h('ul', { class: 'reasons' }, reasons.map((r) => h('li', {}, h('b', { text: r.node_name || 'cluster' }), `: ${r.reason}`)))]
      : null,
    fit
      ? [h('h3', { text: 'What would fit' }),
         h('ul', { class: 'would-fit' },
           fit.suggestion ? h('li', { class: 'suggestion', text: fit.suggestion }) : null,
           // Zeros mean nothing of the requested type is free now.
           fit.max_gpus_on_one_node > 0
             ? h('li', { text: `at most ${fit.max_gpus_on_one_node} GPU(s) on one node` })
             : h('li', { text: 'no GPU of the requested type is free now' }),
           fit.max_memory_gb_per_gpu > 0
             ? h('li', { text: `at most ${gb(fit.max_memory_gb_per_gpu)} GB free on one GPU` })
             : null,
           available.length
             ? h('li', { text: `free GPUs by type: ${available.map(([t, n]) => `${n} × ${t}`).join(', ')}` })
             : null)]
      : null);
}
