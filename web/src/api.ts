// The glassbox HTTP API as the page uses it: the API key, JSON requests with
// readable errors, and the server-sent events of a streaming chat completion.

const KEY_STORAGE = 'glassbox.api_key';

export function apiKey(): string {
  try {
    return localStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

export function setApiKey(key: string): void {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    /* storage disabled: the key lasts for this page only */
  }
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code = '',
  ) {
    super(message);
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { Accept: 'application/json', ...extra };
  const key = apiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function errorOf(res: Response): Promise<ApiError> {
  let message = `HTTP ${res.status}`;
  let code = '';
  try {
    const body = await res.json();
    if (body && typeof body === 'object' && body.error && typeof body.error === 'object') {
      if (typeof body.error.message === 'string') message = body.error.message;
      if (typeof body.error.code === 'string') code = body.error.code;
    }
  } catch {
    /* not JSON */
  }
  if (res.status === 401) {
    if (!code) code = 'unauthorized';
    message += apiKey() ? ' (check the API key at the top right)' : ' (enter an API key at the top right)';
  }
  return new ApiError(message, res.status, code);
}

export async function getJson(path: string): Promise<any> {
  const res = await fetch(path, { headers: headers() });
  if (!res.ok) throw await errorOf(res);
  return res.json();
}

export async function getText(path: string): Promise<string> {
  const res = await fetch(path, { headers: headers({ Accept: '*/*' }) });
  if (!res.ok) throw await errorOf(res);
  return res.text();
}

export async function postJson(path: string, body: unknown): Promise<any> {
  const res = await fetch(path, {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json' }),
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await errorOf(res);
  return res.json();
}

// One parsed `data:` event of a chat completion stream.
export type StreamEvent = Record<string, any>;

// Posts a streaming chat completion and calls `onEvent` for every event until
// [DONE]. An error event ends the stream with an ApiError.
export async function streamChat(
  body: Record<string, unknown>,
  onEvent: (e: StreamEvent) => void,
  signal?: AbortSignal,
): Promise<void> {
  const res = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
    body: JSON.stringify({ ...body, stream: true }),
    signal,
  });
  if (!res.ok) throw await errorOf(res);
  if (!res.body) throw new ApiError('the response has no body', res.status);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut: number;
    // Events end with a blank line; a CR LF stream is accepted too.
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const raw = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, '');
      const data = raw
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (!data) continue;
      if (data === '[DONE]') return;
      let event: StreamEvent;
      try {
        event = JSON.parse(data);
      } catch {
        throw new ApiError('the server sent an event that is not JSON', res.status);
      }
      if (event && typeof event === 'object' && event.error) {
        const err = event.error;
        throw new ApiError(typeof err.message === 'string' ? err.message : 'generation failed', 500, err.code ?? '');
      }
      onEvent(event);
    }
  }
}
