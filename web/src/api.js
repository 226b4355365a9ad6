// Talking to the daemon: one fetch wrapper that adds the bearer token (when
// one is set), asks for a token on 401 and retries, and decodes JSON; and an
// SSE reader over fetch (EventSource cannot send an Authorization header nor
// report the HTTP status, which tells an old daemon from a broken one).

export const API = '/api/v1/gpu';
const TOKEN_KEY = 'gpurm.token';

// Set by the UI: async (reason) => token string, or null when the user
// declines. Only one prompt is open at a time; concurrent 401s share it.
let tokenPrompter = null;
let pendingPrompt = null;
// After the user declines, requests answer 401 without asking again until
// signIn() is called (a poller must not reopen the dialog every few seconds).
let declined = false;

export function setTokenPrompter(fn) {
  tokenPrompter = fn;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// Opens the token prompt now; resolves true when a token was entered.
export async function signIn(reason = '') {
  declined = false;
  return askForToken(reason);
}

async function askForToken(reason) {
  if (declined || !tokenPrompter) return false;
  pendingPrompt ??= tokenPrompter(reason).finally(() => {
    pendingPrompt = null;
  });
  const entered = await pendingPrompt;
  if (entered) {
    setToken(entered);
    return true;
  }
  declined = true;
  return false;
}

// fetch() with the token. On 401 asks for a token (the answer's message is
// shown in the prompt) and retries with it; returns the last response.
export async function apiFetch(path, { method = 'GET', body, headers = {}, signal } = {}) {
  for (;;) {
    const sent = { ...headers };
    if (body !== undefined) sent['Content-Type'] = 'application/json';
    const current = token();
    if (current) sent.Authorization = `Bearer ${current}`;
    const response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
    });
    if (response.status !== 401) return response;
    const reason = await errorMessage(response.clone());
    if (!(await askForToken(current ? `The token was refused: ${reason}` : reason))) {
      return response;
    }
  }
}

// Error thrown for non-2xx answers, carrying the decoded body.
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.code = body?.error?.code ?? '';
    this.field = body?.error?.field ?? '';
  }
}

// {status, ok, body}: never throws for an HTTP status, only for a network
// failure (TypeError) or an abort.
export async function apiCall(path, options) {
  const response = await apiFetch(path, options);
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { error: { message: text.slice(0, 200) } };
  }
  return { status: response.status, ok: response.ok, body };
}

// The decoded body of a 2xx answer; ApiError otherwise.
export async function getJson(path, options) {
  const answer = await apiCall(path, options);
  if (!answer.ok) throw new ApiError(answer.status, answer.body);
  return answer.body;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body?.error?.message ?? `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

// Reads a text/event-stream body, calling onMessage({event, data, id}) for
// each dispatched message and onRetry(ms) for "retry:" fields. Resolves when
// the body ends. Lines end with LF (a CR before it is dropped).
export async function readEventStream(body, onMessage, onRetry) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = '';
  let data = [];
  let id = '';
  for (;;) {
    const { value: chunk, done } = await reader.read();
    if (done) return;
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '');
      buffer = buffer.slice(newline + 1);
      if (line === '') {
        if (data.length > 0) onMessage({ event: event || 'message', data: data.join('\n'), id });
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;  // Comment (keep-alive).
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
      else if (field === 'retry' && /^\d+$/.test(value)) onRetry(Number(value));
    }
  }
}
