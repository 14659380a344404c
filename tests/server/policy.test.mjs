// The exposure policy, by tests that try to break it: a hidden key never sees
// reasoning text or reasoning log-probabilities (SSE included), a summary
// key never sees the raw thinking, a client cannot read another key's
// trace, an unknown key is refused.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { addKey, http, run, sseEvents, startServer, tempDir, thinkBriefly } from './helpers.mjs';

let server;
const keys = {};
const dir = tempDir();
const config = path.join(dir, 'glassbox.json');

// Everything a caller could ask for to get at the reasoning.
const greedy = {
  messages: [{ role: 'user', content: 'Think out loud about the number seven.' }],
  logprobs: true,
  top_logprobs: 5,
  glassbox: { reasoning_logprobs: true, analysis: 'full' },
  ...thinkBriefly,
  seed: 1234,
  max_tokens: 40,
  thinking_budget_tokens: 24,
};

before(async () => {
  keys.full = addKey(config, 'alice', 'client', 'full');
  keys.hidden = addKey(config, 'hugo', 'client', 'hidden');
  keys.summary = addKey(config, 'sam', 'client', 'summary');
  keys.auditor = addKey(config, 'audrey', 'auditor', 'full');
  keys.admin = addKey(config, 'root', 'admin', 'full');
  server = await startServer({ db: path.join(dir, 'audit.db'), config });
});

after(async () => {
  await server.stop();
});

// The auditor's view of a trace: the ground truth the others must not leak.
async function truth(traceId) {
  const t = await http(`${server.url}/v1/traces/${traceId}`, { key: keys.auditor });
  assert.equal(t.status, 200, t.text);
  return t.json;
}

// The reasoning text and every thinking token's text (long enough not to
// appear by chance) must be absent from `text`.
function assertNoReasoning(text, trace, label) {
  assert.ok(trace.reasoning.length >= 8, `${label}: the test needs some reasoning (got '${trace.reasoning}')`);
  assert.ok(!text.includes(JSON.stringify(trace.reasoning).slice(1, -1)), `${label}: the reasoning text leaked`);
  assert.ok(!text.includes('"reasoning_content"'), `${label}: a reasoning_content field appeared`);
  // No log-probability of a thinking token: their values are distinctive.
  for (const tok of trace.tokens.filter((t) => t.phase === 'thinking')) {
    if (tok.logprob === null) continue;
    assert.ok(!text.includes(String(tok.logprob)), `${label}: a thinking token's logprob ${tok.logprob} leaked`);
  }
}

test('keys are stored only as SHA-256 hashes', async () => {
  const fs = await import('node:fs');
  const text = fs.readFileSync(config, 'utf8');
  for (const k of Object.values(keys)) assert.ok(!text.includes(k), 'a key in clear in the config');
  const list = run(['keys', 'list', '--config', config]);
  assert.equal(list.status, 0);
  assert.match(list.stdout, /hugo\s+client\s+hidden/);
  const dup = run(['keys', 'add', 'alice', '--config', config]);
  assert.notEqual(dup.status, 0);
});

test('an unknown or missing key gets 401, a wrong role 403', async () => {
  const body = { messages: [{ role: 'user', content: 'x' }], max_tokens: 2 };
  for (const key of [undefined, 'gb-not-a-key', `${keys.full}x`]) {
    const r = await http(`${server.url}/v1/chat/completions`, { method: 'POST', body, key });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.json.error.type, 'authentication_error');
  }
  const viaClient = server.client('gb-wrong');
  await assert.rejects(viaClient.chat.completions.create(body), (e) => e.status === 401);
  const r = await http(`${server.url}/v1/traces`, { key: 'nope' });
  assert.equal(r.status, 401);
  const auditorGenerates = await http(`${server.url}/v1/chat/completions`, { method: 'POST', body, key: keys.auditor });
  assert.equal(auditorGenerates.status, 403);
  const clientVerifies = await http(`${server.url}/v1/audit/verify`, { key: keys.full });
  assert.equal(clientVerifies.status, 403);
  const metrics = await http(`${server.url}/metrics`, { key: keys.full });
  assert.equal(metrics.status, 403);
  const health = await http(`${server.url}/health`);
  assert.equal(health.status, 200);
});

test('hidden: no reasoning text and no reasoning log-probabilities anywhere', async () => {
  // Non-streaming, with every reasoning-revealing option, and raw format.
  for (const extra of [{}, { reasoning_format: 'none' }]) {
    const r = await http(`${server.url}/v1/chat/completions`, { method: 'POST', body: { ...greedy, ...extra }, key: keys.hidden });
    assert.equal(r.status, 200, r.text);
    const trace = await truth(r.json.trace_id);
    assertNoReasoning(r.text, trace, `hidden non-stream ${JSON.stringify(extra)}`);
    assert.ok(r.json.usage.completion_tokens_details.reasoning_tokens > 0, 'reasoning is still counted');
    assert.equal(r.json.choices[0].logprobs.reasoning_content, undefined);
    assert.equal(trace.reasoning.length > 0, true, 'and still stored');
    assert.equal(trace.key_name, 'hugo');
  }
  // Streaming: every byte of the SSE body.
  for (const extra of [{}, { reasoning_format: 'none' }]) {
    const s = await sseEvents(`${server.url}/v1/chat/completions`, { ...greedy, ...extra, stream: true }, keys.hidden);
    assert.equal(s.status, 200);
    const last = JSON.parse(s.data.at(-2));
    const trace = await truth(last.trace_id);
    assertNoReasoning(s.text, trace, `hidden SSE ${JSON.stringify(extra)}`);
    assert.ok(last.usage.completion_tokens_details.reasoning_tokens > 0);
    assert.equal(s.data.at(-1), '[DONE]');
  }
  // Its own stored trace, listing, export and analysis.
  const r = await http(`${server.url}/v1/chat/completions`, { method: 'POST', body: greedy, key: keys.hidden });
  const trace = await truth(r.json.trace_id);
  const own = await http(`${server.url}/v1/traces/${r.json.trace_id}`, { key: keys.hidden });
  assert.equal(own.status, 200);
  assertNoReasoning(own.text, trace, 'hidden trace view');
  assert.ok(own.json.reasoning_tokens_withheld > 0);
  assert.equal(own.json.report, undefined);
  for (const format of ['json', 'otel']) {
    const e = await http(`${server.url}/v1/traces/${r.json.trace_id}/export?format=${format}`, { key: keys.hidden });
    assert.equal(e.status, 200);
    assertNoReasoning(e.text, trace, `hidden export ${format}`);
  }
  const list = await http(`${server.url}/v1/traces`, { key: keys.hidden });
  assertNoReasoning(list.text, trace, 'hidden list');
  const analyze = await http(`${server.url}/v1/traces/${r.json.trace_id}/analyze`, { method: 'POST', key: keys.hidden });
  assert.equal(analyze.status, 403);
  // Raw completions too.
  const c = await http(`${server.url}/v1/completions`, {
    method: 'POST',
    key: keys.hidden,
    body: { prompt: '<think>\n', logprobs: 5, glassbox: { reasoning_logprobs: true }, ...thinkBriefly },
  });
  assert.equal(c.status, 200, c.text);
  const ctrace = await truth(c.json.trace_id);
  if (ctrace.reasoning.length >= 8) assertNoReasoning(c.text, ctrace, 'hidden raw completion');
});

test('summary: a summary of the steps, never the raw thinking', async () => {
  const r = await http(`${server.url}/v1/chat/completions`, { method: 'POST', body: greedy, key: keys.summary });
  assert.equal(r.status, 200, r.text);
  const trace = await truth(r.json.trace_id);
  assertNoReasoning(r.text, trace, 'summary non-stream');
  const steps = r.json.choices[0].message.reasoning_summary;
  assert.ok(Array.isArray(steps) && steps.length > 0, r.text);
  for (const s of steps) {
    assert.equal(typeof s.title, 'string');
    assert.equal(typeof s.confidence, 'number');
    assert.ok(s.tokens >= 0);
  }
  assert.ok(steps.reduce((n, s) => n + s.tokens, 0) <= r.json.usage.completion_tokens_details.reasoning_tokens);

  const s = await sseEvents(`${server.url}/v1/chat/completions`, { ...greedy, stream: true }, keys.summary);
  const last = JSON.parse(s.data.at(-2));
  const strace = await truth(last.trace_id);
  assertNoReasoning(s.text, strace, 'summary SSE');
  assert.ok(s.text.includes('reasoning_summary'));

  const own = await http(`${server.url}/v1/traces/${r.json.trace_id}`, { key: keys.summary });
  assertNoReasoning(own.text, trace, 'summary trace view');
  assert.ok(Array.isArray(own.json.reasoning_summary));
});

test('full: the client sees its own reasoning; clients never see other keys\' traces', async () => {
  const mine = await http(`${server.url}/v1/chat/completions`, { method: 'POST', body: greedy, key: keys.full });
  assert.equal(mine.status, 200);
  assert.ok(mine.json.choices[0].message.reasoning_content.length > 0);
  assert.ok(mine.json.choices[0].logprobs.reasoning_content.length > 0);
  const theirs = await http(`${server.url}/v1/chat/completions`, { method: 'POST', body: greedy, key: keys.hidden });

  const forbidden = await http(`${server.url}/v1/traces/${theirs.json.trace_id}`, { key: keys.full });
  assert.equal(forbidden.status, 403);
  assert.equal(forbidden.json.error.type, 'permission_error');
  for (const suffix of ['/export?format=json', '/export?format=otel'])
    assert.equal((await http(`${server.url}/v1/traces/${theirs.json.trace_id}${suffix}`, { key: keys.full })).status, 403);
  assert.equal((await http(`${server.url}/v1/traces/${theirs.json.trace_id}/analyze`, { method: 'POST', key: keys.full })).status, 403);
  assert.equal((await http(`${server.url}/v1/traces/${mine.json.trace_id}`, { key: keys.hidden })).status, 403);
  assert.equal((await http(`${server.url}/v1/traces?key=hugo`, { key: keys.full })).status, 403);
  const list = await http(`${server.url}/v1/traces?limit=100`, { key: keys.full });
  assert.ok(list.json.data.length > 0);
  assert.ok(list.json.data.every((t) => t.key_name === 'alice'));
  const missing = await http(`${server.url}/v1/traces/ffffffffffffffffffffffffffffffff`, { key: keys.full });
  assert.equal(missing.status, 404);

  // Auditors and admins read every trace in full, verify and export.
  for (const key of [keys.auditor, keys.admin]) {
    const t = await http(`${server.url}/v1/traces/${theirs.json.trace_id}`, { key });
    assert.equal(t.status, 200);
    assert.ok(t.json.reasoning.length > 0);
    const v = await http(`${server.url}/v1/audit/verify`, { key });
    assert.equal(v.json.ok, true);
    const e = await http(`${server.url}/v1/audit/export?format=jsonl`, { key });
    assert.equal(e.status, 200);
    assert.ok(e.text.trim().split('\n').length >= 2);
  }
  const all = await http(`${server.url}/v1/traces?limit=100`, { key: keys.auditor });
  assert.ok(new Set(all.json.data.map((t) => t.key_name)).size >= 2);
  const admin = await http(`${server.url}/v1/chat/completions`, { method: 'POST', body: { ...greedy, max_tokens: 4 }, key: keys.admin });
  assert.equal(admin.status, 200);
});

test('a keyless server refuses to listen beyond loopback', async () => {
  // No --config and no ./glassbox.json: no keys.
  const r = run(['serve', '-m', 'nonexistent.gguf', '--host', '0.0.0.0', '--port', '0'], { cwd: tempDir() });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /loopback/);
});
