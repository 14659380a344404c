// Bad requests get 4xx JSON errors and the server keeps serving; a client
// that disconnects cancels its generation; a full queue answers 429.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { http, startServer, tempDir, thinkBriefly } from './helpers.mjs';

let server;

before(async () => {
  server = await startServer({ db: path.join(tempDir(), 'audit.db') });
});

after(async () => {
  const r = await server.stop();
  assert.equal(r.code, 0, `server exit: ${JSON.stringify(r)}\n${server.stderr()}`);
});

async function stillServes() {
  const r = await http(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    body: { messages: [{ role: 'user', content: 'still there?' }], max_tokens: 3 },
  });
  assert.equal(r.status, 200, r.text);
}

function assertError(r, status, label) {
  assert.equal(r.status, status, `${label}: ${r.text.slice(0, 300)}`);
  assert.ok(r.json && r.json.error && typeof r.json.error.message === 'string', `${label}: an OpenAI-style error body`);
  assert.ok('type' in r.json.error && 'code' in r.json.error && 'param' in r.json.error, label);
}

const user = [{ role: 'user', content: 'hi' }];
const badBodies = [
  ['malformed JSON', '{"messages": [', 400],
  ['not an object', '[1, 2, 3]', 400],
  ['empty body', '', 400],
  ['trailing garbage', '{"messages": []} xyz', 400],
  ['deep nesting', `{"messages": ${'['.repeat(5000)}${']'.repeat(5000)}}`, 400],
];
const badRequests = [
  ['messages is a string', { messages: 'hi' }, 400],
  ['no messages', { max_tokens: 5 }, 400],
  ['empty messages', { messages: [] }, 400],
  ['message is a number', { messages: [5] }, 400],
  ['content is a number', { messages: [{ role: 'user', content: 5 }] }, 400],
  ['unknown role', { messages: [{ role: 'wizard', content: 'x' }] }, 400],
  ['image part', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 400],
  ['temperature is a string', { messages: user, temperature: 'hot' }, 400],
  ['temperature too high', { messages: user, temperature: 7 }, 400],
  ['top_p zero', { messages: user, top_p: 0 }, 400],
  ['max_tokens is a string', { messages: user, max_tokens: '10' }, 400],
  ['negative max_tokens', { messages: user, max_tokens: -5 }, 400],
  ['zero max_tokens', { messages: user, max_completion_tokens: 0 }, 400],
  ['huge max_tokens', { messages: user, max_tokens: 1e12 }, 400],
  ['fractional max_tokens', { messages: user, max_tokens: 2.5 }, 400],
  ['stream is a string', { messages: user, stream: 'yes' }, 400],
  ['stop is a number', { messages: user, stop: 5 }, 400],
  ['empty stop', { messages: user, stop: [''] }, 400],
  ['top_logprobs without logprobs', { messages: user, top_logprobs: 3 }, 400],
  ['too many top_logprobs', { messages: user, logprobs: true, top_logprobs: 50 }, 400],
  ['n = 2', { messages: user, n: 2 }, 400],
  ['bad reasoning_effort', { messages: user, reasoning_effort: 'extreme' }, 400],
  ['bad reasoning_format', { messages: user, reasoning_format: 'xml' }, 400],
  ['negative thinking budget', { messages: user, thinking_budget_tokens: -7 }, 400],
  ['kwargs not an object', { messages: user, chat_template_kwargs: 'x' }, 400],
  ['glassbox not an object', { messages: user, glassbox: 1 }, 400],
  ['unknown glassbox option', { messages: user, glassbox: { sneaky: true } }, 400],
  ['min thinking above budget', { messages: user, thinking_budget_tokens: 2, glassbox: { min_thinking_tokens: 5 } }, 400],
  ['seed is a string', { messages: user, seed: 'abc' }, 400],
  ['unknown model', { model: 'gpt-4o', messages: user }, 404],
  ['model is a number', { model: 4, messages: user }, 400],
  ['10,000 messages', { messages: Array.from({ length: 10_000 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: 'x' })) }, 400],
  ['prompt longer than the context', { messages: [{ role: 'user', content: 'lorem ipsum dolor sit amet '.repeat(4000) }] }, 400],
];

test('malformed bodies get 400 JSON errors', async () => {
  for (const [label, body, status] of badBodies) {
    const r = await http(`${server.url}/v1/chat/completions`, { method: 'POST', body, raw: true, headers: { 'content-type': 'application/json' } });
    assertError(r, status, label);
  }
  await stillServes();
});

test('wrong types and out-of-range values get 4xx JSON errors naming the parameter', async () => {
  for (const [label, body, status] of badRequests) {
    const r = await http(`${server.url}/v1/chat/completions`, { method: 'POST', body });
    assertError(r, status, label);
  }
  const r = await http(`${server.url}/v1/chat/completions`, { method: 'POST', body: { messages: user, temperature: 'hot' } });
  assert.equal(r.json.error.param, 'temperature');
  const long = await http(`${server.url}/v1/chat/completions`, { method: 'POST', body: badRequests.at(-1)[1] });
  assert.equal(long.json.error.code, 'context_length_exceeded');
  for (const body of [{ prompt: 5 }, { prompt: '' }, {}, { prompt: 'x', echo: true }, { prompt: 'x', logprobs: 9 }]) {
    const c = await http(`${server.url}/v1/completions`, { method: 'POST', body });
    assertError(c, 400, `completions ${JSON.stringify(body)}`);
  }
  await stillServes();
});

test('invalid UTF-8, a huge body, unknown routes', async () => {
  const invalid = Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}]}')]);
  assertError(await http(`${server.url}/v1/chat/completions`, { method: 'POST', body: invalid, raw: true }), 400, 'invalid UTF-8');
  const overlong = Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}]}')]);
  assertError(await http(`${server.url}/v1/chat/completions`, { method: 'POST', body: overlong, raw: true }), 400, 'overlong UTF-8');
  const huge = JSON.stringify({ messages: [{ role: 'user', content: 'a'.repeat(10 * 1024 * 1024) }] });
  assertError(await http(`${server.url}/v1/chat/completions`, { method: 'POST', body: huge, raw: true }), 413, 'huge body');
  assertError(await http(`${server.url}/v1/nothing-here`), 404, 'unknown route');
  assertError(await http(`${server.url}/v1/chat/completions`), 404, 'GET on a POST route');
  assertError(await http(`${server.url}/v1/traces/not-a-trace`), 404, 'unknown trace');
  assertError(await http(`${server.url}/v1/traces?limit=0`), 400, 'bad limit');
  assertError(await http(`${server.url}/v1/traces?since=yesterday`), 400, 'bad time');
  assertError(await http(`${server.url}/v1/models/gpt-4`), 404, 'unknown model');
  await stillServes();
});

// The tiny reasoner was trained on 512-token sequences and would reach that
// context limit in well under a second, racing the disconnect. This server
// runs it with a 32k context (allowed, as in llama.cpp, beyond the trained
// length) and asks for ~30k thinking tokens: with attention over a growing
// cache that takes far longer than the test's abort, so "stopped early" can
// only mean the disconnect cancelled the generation.
test('a client that disconnects cancels its generation; the trace records it', async () => {
  const long = await startServer({ db: path.join(tempDir(), 'audit.db'), extra: ['--ctx-size', '32768', '--max-tokens', '32768'] });
  try {
    const wanted = 30000;
    const body = { messages: user, max_tokens: wanted, seed: 3, glassbox: { min_thinking_tokens: wanted - 100 } };
    const controller = new AbortController();
    const res = await fetch(`${long.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, stream: true }),
      signal: controller.signal,
    });
    const reader = res.body.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    const traceId = JSON.parse(first.split('\n')[0].slice(6)).trace_id;
    controller.abort();
    // The generation stops early and its trace is stored as cancelled.
    const waitForTrace = async (id) => {
      for (let i = 0; i < 600; ++i) {
        const t = await http(`${long.url}/v1/traces/${id}`);
        if (t.status === 200) return t.json;
        await new Promise((r) => setTimeout(r, 100));
      }
      return null;
    };
    const trace = await waitForTrace(traceId);
    assert.ok(trace, 'the cancelled generation was recorded');
    assert.equal(trace.finish_reason, 'cancelled');
    assert.ok(trace.usage.completion_tokens < wanted, `stopped early (${trace.usage.completion_tokens} tokens)`);

    // Non-streaming: the status line comes at once (with the trace id in a
    // header), the body when the trace is stored; leaving cancels as well.
    const c2 = new AbortController();
    const res2 = await fetch(`${long.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, seed: 4 }),
      signal: c2.signal,
    });
    const id2 = res2.headers.get('x-glassbox-trace-id');
    assert.match(id2, /^[0-9a-f]{32}$/);
    await new Promise((r) => setTimeout(r, 200));
    c2.abort();
    const trace2 = await waitForTrace(id2);
    assert.ok(trace2, 'the cancelled generation was recorded');
    assert.equal(trace2.finish_reason, 'cancelled');
    assert.ok(trace2.usage.completion_tokens < wanted, `stopped early (${trace2.usage.completion_tokens} tokens)`);
    const again = await http(`${long.url}/v1/chat/completions`, {
      method: 'POST',
      body: { messages: [{ role: 'user', content: 'still there?' }], max_tokens: 3 },
    });
    assert.equal(again.status, 200, again.text);
  } finally {
    await long.stop();
  }
});

test('a full queue answers 429 and the server recovers', async () => {
  const busy = await startServer({ db: path.join(tempDir(), 'audit.db'), extra: ['--parallel', '1', '--queue', '0'] });
  try {
    const body = { messages: user, max_tokens: 300, glassbox: { min_thinking_tokens: 290 } };
    const results = await Promise.all(
      Array.from({ length: 6 }, () => http(`${busy.url}/v1/chat/completions`, { method: 'POST', body })),
    );
    const statuses = results.map((r) => r.status);
    assert.ok(statuses.includes(200), `${statuses}`);
    assert.ok(statuses.includes(429), `${statuses}`);
    for (const r of results.filter((x) => x.status === 429)) {
      assert.equal(r.json.error.type, 'rate_limit_error');
      assert.equal(r.headers.get('retry-after'), '1');
    }
    const ok = await http(`${busy.url}/v1/chat/completions`, { method: 'POST', body: { messages: user, ...thinkBriefly } });
    assert.equal(ok.status, 200);
    const metrics = await http(`${busy.url}/metrics`);
    assert.match(metrics.text, /glassbox_rejected_requests_total\{reason="queue_full"\} [1-9]/);
  } finally {
    await busy.stop();
  }
});
