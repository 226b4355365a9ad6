// The dashboard's pure parts, in Node without a browser: the SSE parser, the
// formatters and how a GPU's state and reserved memory are derived from the
// allocations.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readEventStream } from '../../web/src/api.js';
import { duration, gb, heat, percent } from '../../web/src/format.js';
import { COLOUR_MODES, gpuState, processMarks, reservedGb, utilizationText } from '../../web/src/grid.js';
import { queueNote } from '../../web/src/queue.js';
import { flattenMig } from '../../web/src/live.js';
import { describeGrants } from '../../web/src/allocations.js';

// A body that delivers `chunks` one read at a time.
function body(chunks) {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

async function parse(chunks) {
  const messages = [];
  const retries = [];
  await readEventStream(body(chunks), (m) => messages.push(m), (ms) => retries.push(ms));
  return { messages, retries };
}

test('SSE: events split across reads, comments, CRLF, multi-line data and retry', async () => {
  const { messages, retries } = await parse([
    'retry: 5000\n: gpurm GPU events\n\n',
    'id: 1\nevent: cha',
    'nge\ndata: {"uuid":"g0"}\n\n',
    ': keep-alive\n\n',
    'id: 2\r\nevent: health\r\ndata: line one\r\ndata: line two\r\n\r\n',
    'data: no event name\n\n',
    'event: dropped\ndata: {"dropped":3}\n',  // Never terminated: not dispatched.
  ]);
  assert.deepEqual(retries, [5000]);
  assert.deepEqual(messages, [
    { event: 'change', data: '{"uuid":"g0"}', id: '1' },
    { event: 'health', data: 'line one\nline two', id: '2' },
    { event: 'message', data: 'no event name', id: '2' },
  ]);
});

test('formatters', () => {
  assert.equal(percent(0.424), '42%');
  assert.equal(percent(null), '–');
  assert.equal(gb(8), '8.0');
  assert.equal(gb(80), '80.0');
  assert.equal(gb(640), '640');
  assert.equal(duration(75), '1m 15s');
  assert.equal(duration(7500), '2h 5m');
  assert.equal(duration(180000), '2d 2h');
  assert.equal(duration(-3), '0s');
});

test('queueNote: claims "no request queue" only when the API document says so', () => {
  assert.match(queueNote(false), /no request queue/);
  // Not known yet (the document needs a token, or the daemon is offline).
  assert.doesNotMatch(queueNote(null), /no request queue/);
  assert.match(queueNote(null), /sign in/);
});

test('heat: pale at rest, red at full load, light text only on dark colours', () => {
  assert.deepEqual(heat(0), ['rgb(232,245,233)', false]);
  assert.deepEqual(heat(1), ['rgb(211,47,47)', true]);
  assert.deepEqual(heat(7), heat(1));
  assert.deepEqual(heat(-1), heat(0));
  assert.equal(heat(null)[0], heat(0)[0]);
});

test('state and reserved memory come from the allocations holding a GPU', () => {
  const gpu = { healthy: true, memory_total_gb: 80 };
  const slice = (gb_) => ({ allocation: {}, grant: { exclusive: false, memory_gb: gb_ } });
  const whole = { allocation: {}, grant: { exclusive: true, memory_gb: 60 } };
  assert.equal(gpuState(gpu, []), 'free');
  assert.equal(reservedGb(gpu, []), 0);
  assert.equal(gpuState(gpu, [slice(10), slice(6)]), 'shared');
  assert.equal(reservedGb(gpu, [slice(10), slice(6)]), 16);
  assert.equal(gpuState(gpu, [whole]), 'allocated');
  assert.equal(reservedGb(gpu, [whole]), 80, 'an exclusive grant reserves the whole GPU');
  assert.equal(gpuState({ ...gpu, healthy: false }, [whole]), 'unhealthy');
  assert.equal(gpuState({ ...gpu, state: 'cordoned' }, []), 'cordoned');
  // A lost node's GPU stays lost whoever holds it: its agent does not answer.
  assert.equal(gpuState({ ...gpu, state: 'lost' }, [whole]), 'lost');
});

test('MIG: devices follow their GPU, utilization is n/a (not 0%), the GPU is in state mig', () => {
  const device = { uuid: 'MIG-1', index: 4, mig_profile: '3g.40gb', mig_parent_uuid: 'GPU-4', utilization: null, utilization_available: false };
  const parent = { uuid: 'GPU-4', index: 4, state: 'mig', mig_mode: true, utilization: null, utilization_available: false, mig_devices: [device] };
  const whole = { uuid: 'GPU-0', index: 0, state: 'free', utilization: 0.25, mig_devices: [] };
  assert.deepEqual(flattenMig([whole, parent]).map((g) => g.uuid), ['GPU-0', 'GPU-4', 'MIG-1']);
  assert.equal(utilizationText(whole), '25%');
  assert.equal(utilizationText(parent), 'n/a (MIG mode)');
  assert.equal(utilizationText(device), 'n/a (MIG)');
  assert.equal(COLOUR_MODES.utilization.ratio(device), null);
  assert.equal(COLOUR_MODES.utilization.ratio(whole), 0.25);
  assert.equal(gpuState(parent, []), 'mig');
  assert.equal(gpuState(device, [{ allocation: {}, grant: { exclusive: true, memory_gb: 39.4 } }]), 'allocated');
});

test('grants: whole GPUs, slices and MIG devices', () => {
  assert.equal(describeGrants([{ node_name: 'n', gpu_index: 0, gpu_uuid: 'GPU-0', exclusive: true },
    { node_name: 'n', gpu_index: 1, gpu_uuid: 'GPU-1', exclusive: true }]), 'n: 0, 1 (whole)');
  assert.equal(describeGrants([{ node_name: 'dgx', gpu_index: 5, gpu_uuid: 'MIG-5-1', exclusive: true, memory_gb: 9.8 }]),
    'dgx: 5 (MIG device)');
  assert.equal(describeGrants([{ node_name: 'k', gpu_index: 2, gpu_uuid: 'k8s:k:nvidia.com/mig-3g.40gb:0', exclusive: true }]),
    'k: 2 (MIG device)');
});

test('a GPU is marked for processes outside gpurm and allocations over their grant', () => {
  assert.deepEqual(processMarks({ foreign_processes: 0, allocation_usage: [] }), []);
  assert.deepEqual(processMarks({
    foreign_processes: 2,
    allocation_usage: [
      { allocation_id: 'a-1', used_gb: 12, granted_gb: 10, over_grant: true },
      { allocation_id: 'a-2', used_gb: 1, granted_gb: 10, over_grant: false },
    ],
  }), ['2 processes outside gpurm', 'a-1 over its grant (12.0 of 10.0 GB)']);
  assert.deepEqual(processMarks({ foreign_processes: 1 }), ['1 process outside gpurm']);
});
