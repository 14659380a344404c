// The official openai client against glassbox serve: streaming (reasoning
// deltas, then content deltas, then usage with reasoning tokens),
// non-streaming, log-probabilities, raw completions, models, traces.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { http, startServer, tempDir, thinkBriefly } from './helpers.mjs';

let server;
let client;

before(async () => {
  server = await startServer({ db: path.join(tempDir(), 'audit.db') });
  client = server.client();
});

after(async () => {
  const r = await server.stop();
  assert.equal(r.code, 0, `server exit: ${JSON.stringify(r)}\n${server.stderr()}`);
});

test('streams reasoning deltas, then content deltas, then usage with reasoning tokens', async () => {
  const stream = await client.chat.completions.create({
    messages: [{ role: 'user', content: 'What is 2 + 3?' }],
    stream: true,
    stream_options: { include_usage: true },
    seed: 7,
    ...thinkBriefly,
  });
  const kinds = [];
  let reasoning = '';
  let content = '';
  let usage = null;
  let traceId = null;
  let finish = null;
  for await (const chunk of stream) {
    assert.ok(chunk.trace_id, 'every chunk carries its trace_id');
    traceId ??= chunk.trace_id;
    assert.equal(chunk.trace_id, traceId);
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      const d = choice.delta ?? {};
      if (d.reasoning_content) { kinds.push('reasoning'); reasoning += d.reasoning_content; }
      if (d.content) { kinds.push('content'); content += d.content; }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  assert.ok(kinds.includes('reasoning'), `reasoning deltas expected, got ${kinds}`);
  assert.ok(kinds.includes('content'), `content deltas expected, got ${kinds}`);
  assert.ok(kinds.lastIndexOf('reasoning') < kinds.indexOf('content'), `reasoning before content: ${kinds}`);
  assert.ok(['stop', 'length'].includes(finish));
  assert.ok(usage, 'a usage chunk');
  assert.ok(usage.completion_tokens_details.reasoning_tokens > 0);
  assert.ok(usage.completion_tokens_details.reasoning_tokens <= thinkBriefly.thinking_budget_tokens);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);

  // The stored trace holds exactly what was streamed.
  const t = await http(`${server.url}/v1/traces/${traceId}`);
  assert.equal(t.status, 200);
  assert.equal(t.json.reasoning, reasoning);
  assert.equal(t.json.answer, content);
  assert.equal(t.json.usage.reasoning_tokens, usage.completion_tokens_details.reasoning_tokens);
  assert.ok(t.json.tokens.length === usage.completion_tokens);
  assert.ok(t.json.tokens.every((tok) => typeof tok.logprob === 'number' && typeof tok.confidence === 'number'));
  assert.match(t.json.model_sha256, /^[0-9a-f]{64}$/);
  assert.match(t.json.audit.hash, /^[0-9a-f]{64}$/);
});

test('non-streaming completion with reasoning_content, usage and trace id', async () => {
  const r = await client.chat.completions.create({
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Name a colour.' }],
    seed: 11,
    ...thinkBriefly,
  });
  assert.match(r.trace_id, /^[0-9a-f]{32}$/);
  assert.equal(r.id, `chatcmpl-${r.trace_id}`);
  const m = r.choices[0].message;
  assert.equal(m.role, 'assistant');
  assert.equal(typeof m.content, 'string');
  assert.ok(m.reasoning_content.length > 0);
  assert.ok(r.usage.completion_tokens_details.reasoning_tokens > 0);
  // Same seed, same request: the same tokens.
  const again = await client.chat.completions.create({
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Name a colour.' }],
    seed: 11,
    ...thinkBriefly,
  });
  assert.equal(again.choices[0].message.content, m.content);
  assert.equal(again.choices[0].message.reasoning_content, m.reasoning_content);
  assert.notEqual(again.trace_id, r.trace_id);
});

test('log-probabilities of the answer tokens, and of the reasoning when asked', async () => {
  const r = await client.chat.completions.create({
    messages: [{ role: 'user', content: 'Say something.' }],
    logprobs: true,
    top_logprobs: 3,
    seed: 5,
    ...thinkBriefly,
  });
  const lp = r.choices[0].logprobs;
  assert.ok(lp.content.length > 0);
  for (const e of lp.content) {
    assert.ok(e.logprob <= 0);
    assert.equal(e.top_logprobs.length, 3);
    assert.ok(Array.isArray(e.bytes));
    const best = Math.max(...e.top_logprobs.map((t) => t.logprob));
    assert.ok(e.logprob <= best + 1e-6);
  }
  assert.equal(lp.reasoning_content, undefined, 'reasoning log-probabilities only on request');
  // The answer tokens' bytes spell the stored answer tokens.
  const t = await http(`${server.url}/v1/traces/${r.trace_id}`);
  const answerIds = t.json.tokens.filter((x) => x.phase === 'answer' && x.logprob !== null);
  assert.ok(answerIds.length >= lp.content.length);

  const withReasoning = await client.chat.completions.create({
    messages: [{ role: 'user', content: 'Say something.' }],
    logprobs: true,
    glassbox: { reasoning_logprobs: true },
    seed: 5,
    ...thinkBriefly,
  });
  const rl = withReasoning.choices[0].logprobs.reasoning_content;
  assert.equal(rl.length, withReasoning.usage.completion_tokens_details.reasoning_tokens);

  // Streaming: the log-probabilities arrive with the deltas.
  const stream = await client.chat.completions.create({
    messages: [{ role: 'user', content: 'Say something.' }],
    logprobs: true,
    top_logprobs: 2,
    stream: true,
    seed: 5,
    ...thinkBriefly,
  });
  let entries = 0;
  for await (const chunk of stream)
    for (const c of chunk.choices) entries += c.logprobs?.content?.length ?? 0;
  assert.equal(entries, lp.content.length, 'same seed: as many answer log-probabilities streamed as returned whole');
});

test('thinking controls: effort, budget, disabled thinking, min thinking', async () => {
  const off = await client.chat.completions.create({
    messages: [{ role: 'user', content: 'hi' }],
    chat_template_kwargs: { enable_thinking: false },
    max_tokens: 12,
    seed: 1,
  });
  assert.equal(off.usage.completion_tokens_details.reasoning_tokens, 0);
  assert.equal(off.choices[0].message.reasoning_content, undefined);

  const none = await client.chat.completions.create({
    messages: [{ role: 'user', content: 'hi' }],
    reasoning_effort: 'none',
    max_tokens: 12,
    seed: 1,
  });
  assert.equal(none.usage.completion_tokens_details.reasoning_tokens, 0);

  const budget = await client.chat.completions.create({
    messages: [{ role: 'user', content: 'hi' }],
    thinking_budget_tokens: 3,
    max_tokens: 16,
    seed: 2,
  });
  assert.ok(budget.usage.completion_tokens_details.reasoning_tokens <= 3);

  const minimum = await client.chat.completions.create({
    messages: [{ role: 'user', content: 'hi' }],
    glassbox: { min_thinking_tokens: 10 },
    max_tokens: 14,
    seed: 3,
  });
  assert.ok(minimum.usage.completion_tokens_details.reasoning_tokens >= 10);
});

test('reasoning_format none returns the raw text with the thinking block', async () => {
  const r = await client.chat.completions.create({
    messages: [{ role: 'user', content: 'hi' }],
    reasoning_format: 'none',
    seed: 9,
    ...thinkBriefly,
  });
  const m = r.choices[0].message;
  assert.equal(m.reasoning_content, undefined);
  assert.ok(m.content.includes('</think>'), m.content);
  const t = await http(`${server.url}/v1/traces/${r.trace_id}`);
  assert.ok(m.content.includes(t.json.reasoning));
});

test('a server with a q8_0 KV cache answers and says so', async () => {
  const q8 = await startServer({ db: path.join(tempDir(), 'audit.db'), extra: ['--kv-cache-type', 'q8_0'] });
  try {
    const c = q8.client();
    const r = await c.chat.completions.create({
      messages: [{ role: 'user', content: 'What is 2 + 3?' }],
      seed: 7,
      ...thinkBriefly,
    });
    assert.ok(r.usage.completion_tokens >= 1);
    assert.equal(typeof r.choices[0].message.content, 'string');
    const models = await c.models.list();
    assert.equal(models.data[0].glassbox.kv_cache_type, 'q8_0');
  } finally {
    const r = await q8.stop();
    assert.equal(r.code, 0, `server exit: ${JSON.stringify(r)}\n${q8.stderr()}`);
  }
});

test('raw completions, models, health, metrics', async () => {
  const c = await client.completions.create({ prompt: 'Once upon a time', max_tokens: 8, seed: 4 });
  assert.equal(typeof c.choices[0].text, 'string');
  assert.match(c.trace_id, /^[0-9a-f]{32}$/);
  assert.ok(c.usage.completion_tokens >= 1 && c.usage.completion_tokens <= 8);

  const stream = await client.completions.create({ prompt: 'Once upon a time', max_tokens: 6, seed: 4, stream: true });
  let text = '';
  for await (const chunk of stream) for (const ch of chunk.choices) text += ch.text ?? '';
  const again = await client.completions.create({ prompt: 'Once upon a time', max_tokens: 6, seed: 4 });
  assert.equal(text, again.choices[0].text);

  const models = await client.models.list();
  assert.equal(models.data.length, 1);
  assert.equal(models.data[0].glassbox.kv_cache_type, 'f16');
  const id = models.data[0].id;
  const named = await client.chat.completions.create({ model: id, messages: [{ role: 'user', content: 'x' }], max_tokens: 4 });
  assert.equal(named.model, id);

  const health = await http(`${server.url}/health`);
  assert.equal(health.status, 200);
  assert.equal(health.json.status, 'ok');

  const metrics = await http(`${server.url}/metrics`);
  assert.equal(metrics.status, 200);
  for (const name of ['glassbox_requests_total', 'glassbox_prompt_tokens_total', 'glassbox_reasoning_tokens_total',
    'glassbox_answer_tokens_total', 'glassbox_request_duration_seconds_bucket', 'glassbox_queue_depth'])
    assert.ok(metrics.text.includes(name), `metrics lack ${name}`);
  assert.match(metrics.text, /glassbox_requests_total\{endpoint="\/v1\/chat\/completions",code="200"\} \d+/);
});

test('traces: list with filters and pages, analysis, exports', async () => {
  const first = await client.chat.completions.create({ messages: [{ role: 'user', content: 'a' }], ...thinkBriefly });
  const list = await http(`${server.url}/v1/traces?limit=2`);
  assert.equal(list.status, 200);
  assert.equal(list.json.data.length, 2);
  assert.equal(list.json.has_more, true);
  const next = await http(`${server.url}/v1/traces?limit=2&after=${list.json.last_id}`);
  assert.ok(next.json.data.every((t) => !list.json.data.some((u) => u.id === t.id)), 'pages do not overlap');
  const since = await http(`${server.url}/v1/traces?since=${Math.floor(Date.now() / 1000) + 3600}`);
  assert.equal(since.json.data.length, 0);

  const analysis = await http(`${server.url}/v1/traces/${first.trace_id}/analyze`, { method: 'POST', body: {} });
  assert.equal(analysis.status, 200, analysis.text);
  assert.ok(Array.isArray(analysis.json.report.steps));
  const view = await http(`${server.url}/v1/traces/${first.trace_id}`);
  assert.equal(view.json.analyses.length, 1);

  const otel = await http(`${server.url}/v1/traces/${first.trace_id}/export?format=otel`);
  assert.equal(otel.status, 200);
  const span = otel.json.resourceSpans[0].scopeSpans[0].spans[0];
  assert.equal(span.traceId, first.trace_id);
  const attrs = Object.fromEntries(span.attributes.map((a) => [a.key, a.value]));
  assert.equal(Number(attrs['gen_ai.usage.reasoning.output_tokens'].intValue), first.usage.completion_tokens_details.reasoning_tokens);
  assert.equal(Number(attrs['gen_ai.usage.input_tokens'].intValue), first.usage.prompt_tokens);
  const json = await http(`${server.url}/v1/traces/${first.trace_id}/export?format=json`);
  assert.equal(json.json.id, first.trace_id);
  const bad = await http(`${server.url}/v1/traces/${first.trace_id}/export?format=xml`);
  assert.equal(bad.status, 400);

  const verify = await http(`${server.url}/v1/audit/verify`);
  assert.equal(verify.json.ok, true);
  assert.ok(verify.json.records >= 2);
});
