// gpurm's dashboard: wires the live model to the views.
import { setTokenPrompter, signIn, token, setToken } from './api.js';
import { $, h, setChildren, setText } from './dom.js';
import { percent } from './format.js';
import { Live } from './live.js';
import { COLOUR_MODES, Grid } from './grid.js';
import { GpuDetail } from './detail.js';
import { AllocationTable } from './allocations.js';
import { RequestForm } from './request_form.js';
import { QueuePanel } from './queue.js';

const live = new Live();
// Tests and curious users can reach the model from the console.
window.gpurm = { live };

const detail = new GpuDetail($('#detail'), () => {
  grid.setSelected('');
  schedule();
});
const grid = new Grid($('#cluster'), (uuid) => {
  grid.setSelected(uuid);
  detail.open(uuid, live);
  schedule();
});
const refreshSoon = () => live.refresh();
const allocations = new AllocationTable($('#allocations'), refreshSoon);
const form = new RequestForm($('#request'), refreshSoon);
const queue = new QueuePanel($('#queue'));

const modeSelect = $('#colour-mode');
setChildren(modeSelect, Object.entries(COLOUR_MODES).map(([value, mode]) => h('option', { value, text: mode.label })));
modeSelect.addEventListener('change', () => {
  grid.setMode(modeSelect.value);
  schedule();
});

// Token prompt: a modal dialog, resolved with the token or null.
const dialog = $('#token-dialog');
setTokenPrompter((reason) => new Promise((resolve) => {
  setText(dialog.querySelector('.reason'), reason || 'This daemon needs a token.');
  dialog.querySelector('input').value = '';
  dialog.addEventListener('close', () => {
    resolve(dialog.returnValue === 'ok' ? dialog.querySelector('input').value.trim() || null : null);
  }, { once: true });
  dialog.showModal();
}));
const signInButton = $('#sign-in');
signInButton.addEventListener('click', async () => {
  if (token()) {
    setToken('');
    schedule();
    return;
  }
  if (await signIn()) live.refresh();
});

// Views render at most once per frame, however many updates arrive.
let frame = 0;
function schedule() {
  frame ||= requestAnimationFrame(() => {
    frame = 0;
    render();
  });
}

function render() {
  renderSummary();
  grid.render(live);
  detail.render(live);
  allocations.render(live);
  form.render(live);
  queue.render(live);
  setText(signInButton, token() ? 'Sign out' : 'Sign in');
  signInButton.hidden = !token() && live.connection.state !== 'auth';
}

const CONNECTION_TEXT = {
  connecting: 'connecting…',
  live: 'live',
  polling: 'polling',
  offline: 'offline',
  auth: 'sign-in needed',
};

function renderSummary() {
  const { state, detail: why } = live.connection;
  const el = $('#connection');
  el.className = `connection ${state}`;
  el.dataset.state = state;
  const every = `${live.pollMs / 1000}s`;
  setText(el, state === 'polling' ? `polling every ${every}` : CONNECTION_TEXT[state]);
  el.title = why;
  const status = live.status;
  if (!status) return;
  const parts = [
    `${status.total_nodes} nodes`,
    // Grantable units: whole GPUs and MIG devices.
    `${status.total_gpus ?? '?'} GPUs${status.mig_devices ? ` (${status.mig_devices} MIG devices)` : ''}`,
    `${status.available_gpus ?? '?'} free`,
    `${status.allocated_gpus ?? '?'} allocated`,
    `${live.allocations.length} allocation${live.allocations.length === 1 ? '' : 's'}`,
    `utilization ${percent(status.utilization?.gpu_utilization)}`,
    `memory used ${percent(status.utilization?.gpu_memory_usage)}`,
  ];
  if (live.error) parts.push(`error ${live.error}`);
  setText($('#summary'), parts.join(' · '));
}

live.subscribe(schedule);
schedule();
// Ages and lease countdowns move even when nothing else does.
setInterval(schedule, 1000);
live.start();
