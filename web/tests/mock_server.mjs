// A stand-in for `glassbox serve` while developing the page: it serves dist/
// (every non-API path gets index.html) and answers the API with the JSON
// shapes of the real server (src/server, docs/analysis-report.md), made up
// from a fixed little arithmetic trace. The browser tests never use it: they
// run against the real binary.
//
//   node tests/mock_server.mjs [--port 8090] [--proxy http://127.0.0.1:8080] [--report FILE]
//
// With --report, every trace carries that analysis report (the JSON of
// analysis::to_json) and its token trace instead of the made-up one.
//
// With --proxy, /v1 and /health are forwarded to a real server instead, so
// that the page can be tried against it before the server serves the page.
//
// Keys: "full-key", "summary-key", "hidden-key" (clients), "auditor-key";
// no key at all acts as an admin (like a keyless server).
import { createServer, request as httpRequest } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const port = Number(opt('--port', '8090'));
const proxy = opt('--proxy', '');
const reportFile = opt('--report', '');
const fixedReport = reportFile ? JSON.parse(await readFile(reportFile, 'utf8')) : null;
const dist = fileURLToPath(new URL('../dist/', import.meta.url));

const KEYS = {
  'full-key': { name: 'alice', role: 'client', exposure: 'full' },
  'summary-key': { name: 'bob', role: 'client', exposure: 'summary' },
  'hidden-key': { name: 'carol', role: 'client', exposure: 'hidden' },
  'auditor-key': { name: 'audit', role: 'auditor', exposure: 'full' },
};

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };

// ------------------------------------------------------------ a made-up trace

const THINKING = [
  'The question asks for 17 + 25.\n',
  'Split 25 into 20 + 5.\n',
  '17 + 20 = 37.\n',
  '37 + 5 = 42.\n',
  'Wait, let me check: 42 - 25 = 17.\n',
  'So the answer is 42.\n',
];
const ANSWER = 'The answer is 42.';

function tokenize(text) {
  return text.match(/\s*[^\s]+|\s+/g) ?? [];
}

function pseudo(i) {
  const x = Math.sin(i * 12.9898) * 43758.5453;
  return x - Math.floor(x);
}

function makeTokens() {
  const tokens = [];
  let id = 1000;
  const push = (text, phase, origin = 'sampled') => {
    const i = tokens.length;
    const p = phase === 'thinking' ? 0.35 + 0.64 * pseudo(i) : 0.9 + 0.09 * pseudo(i);
    const lp = Math.log(p);
    const alts = [
      { id: id, text, logprob: lp },
      { id: id + 1, text: text.trim() === '' ? ' ' : ` ${text.trim()}s`, logprob: Math.log((1 - p) * 0.6) },
      { id: id + 2, text: text.trim() === '' ? '\n' : text.trim().toUpperCase(), logprob: Math.log((1 - p) * 0.25) },
      { id: id + 3, text: ' the', logprob: Math.log((1 - p) * 0.1) },
      { id: id + 4, text: '.', logprob: Math.log((1 - p) * 0.05) },
    ];
    const conf = -alts.reduce((s, a) => s + a.logprob, 0) / alts.length;
    tokens.push({
      id,
      text,
      phase,
      origin,
      logprob: lp,
      entropy: -(p * Math.log(p) + (1 - p) * Math.log(Math.max(1e-9, 1 - p))),
      confidence: conf,
      time_ms: 12.5,
      top: alts,
    });
    id += 5;
  };
  push('<think>', 'open_marker');
  push('\n', 'thinking');
  const stepRanges = [];
  for (const line of THINKING) {
    const begin = tokens.length;
    for (const t of tokenize(line)) push(t, 'thinking');
    stepRanges.push([begin, tokens.length]);
  }
  push('</think>', 'close_marker');
  push('\n\n', 'answer');
  const answerBegin = tokens.length;
  for (const t of tokenize(ANSWER)) push(t, 'answer');
  push('<｜end▁of▁sentence｜>', 'answer');
  return { tokens, stepRanges, answerBegin };
}

function makeReport(question, tokens, stepRanges) {
  const roles = ['setup', 'setup', 'compute', 'compute', 'check', 'conclude'];
  const steps = stepRanges.map(([b, e], i) => {
    const ts = tokens.slice(b, e);
    const mean = ts.reduce((s, t) => s + t.confidence, 0) / ts.length;
    const least = ts.reduce((m, t, k) => (t.logprob < ts[m].logprob ? k : m), 0);
    return {
      index: i,
      text: THINKING[i].trim(),
      tokens: [b, e],
      role: roles[i] ?? 'setup',
      confidence: { mean, min: Math.min(...ts.map((t) => t.confidence)), tail: mean, lowest_group: mean * 0.9 },
      mean_entropy: 0.4,
      mean_logprob: ts.reduce((s, t) => s + t.logprob, 0) / ts.length,
      min_logprob: ts[least].logprob,
      least_likely_token: { index: b + least, text: ts[least].text, logprob: ts[least].logprob },
      result: /= (\d+)/.test(THINKING[i]) ? Number(/= (\d+)/.exec(THINKING[i])[1]) : null,
    };
  });
  const probs = [0.04, 0.06, 0.11, 0.38, 0.81, 0.86, 0.93];
  const enc = new TextEncoder();
  const words = [];
  const re = /\S+/g;
  let m;
  while ((m = re.exec(question))) {
    const b = enc.encode(question.slice(0, m.index)).length;
    const e = b + enc.encode(m[0]).length;
    const digits = /\d/.test(m[0]);
    words.push({
      word: m[0],
      bytes: [b, e],
      tokens: [10 + words.length, 11 + words.length],
      occlusion: digits ? 2.5 + pseudo(b) : 0.3 * pseudo(e) - 0.05,
      occlusion_response: digits ? 3.1 : 0.2,
      attention: digits ? 0.2 + 0.1 * pseudo(b) : 0.03 + 0.04 * pseudo(e),
    });
  }
  return {
    format: 'glassbox-analysis',
    version: 1,
    model: 'mock-reasoner',
    question,
    reasoning: THINKING.join(''),
    content: ANSWER,
    finish_reason: 'stop',
    answer: { found: true, text: '42', value: 42, tokens: [0, 0], bridge: '\n</think>\n\nThe answer is ', logprob: -0.07, probability: 0.93 },
    summary: { prompt_tokens: 24, generated_tokens: tokens.length, thinking_tokens: 40, answer_tokens: 6, steps: steps.length,
               mean_confidence: 3.1, lowest_group_confidence: 1.9, tail_confidence: 3.4, mean_entropy: 0.4 },
    steps,
    flags: { lowest_confidence: 1, lowest_group_confidence: 1, least_likely_token: 4, most_important: 3, decisive: 3, final_result: 3 },
    early_answer: {
      computed: true,
      threshold: 0.5,
      decided_step: 3,
      points: probs.map((p, i) => ({ after_step: i - 1, position: 30 + i * 6, logprob: Math.log(p), probability: p,
                                     greedy_text: i >= 4 ? '42' : '37', greedy_answer: i >= 4 ? 42 : 37, greedy_matches: i >= 4 })),
      tokens_evaluated: 120, greedy_tokens_evaluated: 60, seconds: 0.4,
    },
    importance: {
      computed: true, baseline_logprob: -0.07, resamples: 0,
      steps: steps.map((s, i) => ({ step: i, removed_logprob: -0.07 - [0.1, 0.4, 1.2, 2.6, 0.2, 0.5][i],
                                   removed_delta: [0.1, 0.4, 1.2, 2.6, 0.2, 0.5][i], importance: [0.02, 0.08, 0.24, 0.52, 0.04, 0.1][i] })),
      top: [3, 2, 5], tokens_evaluated: 80, seconds: 0.3,
    },
    prompt_attribution: { computed: true, question, baseline_response_logprob: -12.5, attention_on_question: 0.41, words,
                          tokens_evaluated: 200, seconds: 0.5 },
    logit_lens: { computed: false, skipped: 'not requested' },
    attention_maps: [],
    self_consistency: {
      computed: true, samples: 8, threshold: 1.7,
      traces: Array.from({ length: 8 }, (_, i) => ({ index: i, warmup: i < 4, answer: i === 5 ? '32' : '42', finish_reason: 'stop',
                                                     tokens: 40 + i, confidence: 2 + pseudo(i), mean_confidence: 3, stopped_early: i === 6 })),
      votes: [{ answer: '42', count: 7, weight: 16.2 }, { answer: '32', count: 1, weight: 1.9 }],
      majority: '42', weighted_winner: '42', agreement: 0.875, winner_matches_trace: true,
      tokens_generated: 340, tokens_saved: 12, seconds: 1.2,
    },
    tokens_evaluated: 400,
    seconds: 2.4,
  };
}

// ------------------------------------------------------------ the store

const traces = []; // records, oldest first
let seq = 0;

function hexId() {
  return Array.from({ length: 32 }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
}

// The record's tokens from a report's own trace ([id, logprob] alternatives).
function tokensOfReport(report) {
  return report.trace.map((t) => ({ ...t, top: t.top.map(([id, logprob]) => ({ id, text: `#${id}`, logprob })) }));
}

function record(question, keyName, body, thinkingOn) {
  const made = makeTokens();
  const tokens = fixedReport ? tokensOfReport(fixedReport) : made.tokens;
  const stepRanges = made.stepRanges;
  const kept = thinkingOn ? tokens : tokens.filter((t) => t.phase === 'answer');
  const rec = {
    kind: 'trace',
    trace_id: hexId(),
    response_id: 'chatcmpl-x',
    endpoint: 'chat.completions',
    created_at: Date.now(),
    completed_at: Date.now() + 900,
    model: 'mock-reasoner',
    model_file: 'models/mock.gguf',
    model_sha256: 'ab'.repeat(32),
    key_name: keyName,
    request: body,
    parameters: { max_tokens: body.max_tokens ?? 1024, seed: body.seed ?? 7 },
    prompt: `<｜User｜>${question}<｜Assistant｜><think>\n`,
    reasoning: thinkingOn ? THINKING.join('') : '',
    answer: ANSWER,
    finish_reason: 'stop',
    usage: { prompt_tokens: 24, completion_tokens: kept.length, reasoning_tokens: thinkingOn ? kept.filter((t) => t.phase === 'thinking').length : 0,
             answer_tokens: kept.filter((t) => t.phase === 'answer').length },
    thinking: { forced_closed: false, unclosed: false },
    timing: { queue_ms: 0.2, prompt_ms: 40, generate_ms: 850 },
    tokens: kept,
    report:
      thinkingOn && body.glassbox?.analysis && body.glassbox.analysis !== 'none'
        ? fixedReport ?? makeReport(question, kept, stepRanges)
        : null,
  };
  seq += 1;
  traces.push({ seq, hash: hexId() + hexId(), prev_hash: traces.length ? traces[traces.length - 1].hash : '', rec, analyses: [] });
  return traces[traces.length - 1];
}

function summaryOf(rec) {
  const report = rec.report;
  if (report && Array.isArray(report.steps))
    return report.steps.map((s, i) => ({ step: i + 1, title: s.text.slice(0, Math.max(4, Math.floor(s.text.length / 2))) + '…',
                                         tokens: s.tokens[1] - s.tokens[0], confidence: s.confidence.mean, mean_logprob: s.mean_logprob }));
  return THINKING.map((l, i) => ({ step: i + 1, title: l.trim().slice(0, 10) + '…', tokens: 6, confidence: 3, mean_logprob: -0.4 }));
}

function view(entry, exposure) {
  const { rec } = entry;
  const v = { id: rec.trace_id, object: 'trace' };
  for (const [k, x] of Object.entries(rec)) if (k !== 'trace_id' && k !== 'kind') v[k] = x;
  v.audit = { seq: entry.seq, hash: entry.hash, prev_hash: entry.prev_hash };
  if (exposure === 'full') {
    v.analyses = entry.analyses;
    return v;
  }
  delete v.reasoning;
  delete v.report;
  const kept = v.tokens.filter((t) => t.phase === 'answer' || t.phase === 'before_thinking');
  v.reasoning_tokens_withheld = v.tokens.length - kept.length;
  v.tokens = kept;
  v.exposure = exposure;
  if (exposure === 'summary') v.reasoning_summary = summaryOf(rec);
  return v;
}

// ------------------------------------------------------------ HTTP

function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-cache' });
  res.end(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
}

function fail(res, status, message, code = '') {
  send(res, status, { error: { message, type: status === 401 ? 'authentication_error' : 'invalid_request_error', param: null, code } });
}

function principal(req) {
  const auth = req.headers.authorization ?? '';
  const key = auth.startsWith('Bearer ') ? auth.slice(7) : '';
  if (!key) return { name: '', role: 'admin', exposure: 'full' };
  return KEYS[key] ?? null;
}

async function bodyOf(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

async function serveStatic(req, res, path) {
  let file = normalize(join(dist, path));
  if (!file.startsWith(dist) || path === '/' || !extname(path)) file = join(dist, 'index.html');
  try {
    const data = await readFile(file);
    send(res, 200, data, TYPES[extname(file)] ?? 'application/octet-stream');
  } catch {
    send(res, 404, 'not found', 'text/plain');
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function chat(req, res, p) {
  if (p.role === 'auditor') return fail(res, 403, 'an auditor key may not generate', 'forbidden');
  let body;
  try {
    body = JSON.parse(await bodyOf(req));
  } catch {
    return fail(res, 400, 'We could not parse the JSON body of your request', 'invalid_json');
  }
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const question = String(messages.filter((m) => m.role === 'user').pop()?.content ?? '');
  const thinkingOn = body.chat_template_kwargs?.enable_thinking !== false && body.reasoning_effort !== 'none';
  const entry = record(question, p.name, body, thinkingOn);
  const id = entry.rec.trace_id;
  const chunk = (choice, extra = {}) => ({ id: `chatcmpl-${id}`, object: 'chat.completion.chunk', created: 0, model: 'mock-reasoner',
                                           trace_id: id, choices: choice ? [choice] : [], ...extra });
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', 'X-Glassbox-Trace-Id': id });
  const ev = (j) => res.write(`data: ${JSON.stringify(j)}\n\n`);
  ev(chunk({ index: 0, delta: { role: 'assistant' }, logprobs: null, finish_reason: null }));
  if (thinkingOn && p.exposure === 'full')
    for (const t of entry.rec.tokens.filter((t) => t.phase === 'thinking')) {
      ev(chunk({ index: 0, delta: { reasoning_content: t.text }, logprobs: null, finish_reason: null }));
      await sleep(15);
    }
  if (thinkingOn && p.exposure === 'summary')
    ev(chunk({ index: 0, delta: { reasoning_summary: summaryOf(entry.rec) }, logprobs: null, finish_reason: null }));
  for (const t of tokenize('\n\n' + ANSWER)) {
    ev(chunk({ index: 0, delta: { content: t }, logprobs: null, finish_reason: null }));
    await sleep(15);
  }
  ev(chunk({ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }));
  const u = entry.rec.usage;
  ev(chunk(null, {
    usage: { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.prompt_tokens + u.completion_tokens,
             completion_tokens_details: { reasoning_tokens: u.reasoning_tokens } },
    glassbox: { trace_id: id, audit_seq: entry.seq, exposure: p.exposure, thinking: { forced_closed: false, unclosed: false } },
  }));
  res.end('data: [DONE]\n\n');
}

function forward(req, res) {
  const target = new URL(req.url, proxy);
  const up = httpRequest(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (r) => {
    res.writeHead(r.statusCode ?? 502, r.headers);
    r.pipe(res);
  });
  up.on('error', (e) => fail(res, 502, `proxy: ${e.message}`));
  req.pipe(up);
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const path = url.pathname;
  if (!path.startsWith('/v1/') && path !== '/health') return serveStatic(req, res, path);
  if (proxy) return forward(req, res);
  const p = principal(req);
  if (!p) return fail(res, 401, 'Incorrect API key provided', 'invalid_api_key');
  const fullView = p.role !== 'client' ? 'full' : p.exposure;
  try {
    if (path === '/health') return send(res, 200, { status: 'ok', model: 'mock-reasoner' });
    if (path === '/v1/models') return send(res, 200, { object: 'list', data: [{ id: 'mock-reasoner', object: 'model', glassbox: { sha256: 'ab'.repeat(32) } }] });
    if (path === '/v1/chat/completions' && req.method === 'POST') return chat(req, res, p);
    if (path === '/v1/traces') {
      let rows = traces.filter((t) => p.role !== 'client' || t.rec.key_name === p.name);
      if (url.searchParams.get('key')) rows = rows.filter((t) => t.rec.key_name === url.searchParams.get('key'));
      if (url.searchParams.get('order') !== 'asc') rows = [...rows].reverse();
      const after = url.searchParams.get('after');
      if (after) rows = rows.slice(rows.findIndex((t) => t.rec.trace_id === after) + 1);
      const limit = Number(url.searchParams.get('limit') ?? 20);
      const page = rows.slice(0, limit);
      return send(res, 200, {
        object: 'list',
        data: page.map((t) => ({ id: t.rec.trace_id, object: 'trace', created_at: t.rec.created_at, completed_at: t.rec.completed_at,
                                 model: t.rec.model, key_name: t.rec.key_name, endpoint: t.rec.endpoint, finish_reason: t.rec.finish_reason,
                                 usage: t.rec.usage, audit_seq: t.seq })),
        has_more: rows.length > limit,
        first_id: page[0]?.rec.trace_id ?? null,
        last_id: page[page.length - 1]?.rec.trace_id ?? null,
      });
    }
    if (path === '/v1/audit/verify') {
      if (p.role === 'client') return fail(res, 403, 'a client key may not verify or export the audit store', 'forbidden');
      const head = traces[traces.length - 1];
      return send(res, 200, { ok: true, records: traces.length, head: { seq: head?.seq ?? 0, hash: head?.hash ?? '' }, store: 'sqlite:mock.db' });
    }
    if (path === '/v1/audit/export') {
      if (p.role === 'client') return fail(res, 403, 'a client key may not verify or export the audit store', 'forbidden');
      return send(res, 200, traces.map((t) => JSON.stringify({ seq: t.seq, hash: t.hash, prev_hash: t.prev_hash, record: t.rec })).join('\n') + '\n', 'application/x-ndjson');
    }
    const m = /^\/v1\/traces\/([^/]+)(\/analyze|\/export)?$/.exec(path);
    if (m) {
      const entry = traces.find((t) => t.rec.trace_id === m[1]);
      if (!entry) return fail(res, 404, `no trace with id '${m[1]}'`, 'not_found');
      if (p.role === 'client' && entry.rec.key_name !== p.name) return fail(res, 403, 'this trace belongs to another key', 'forbidden');
      if (m[2] === '/analyze') {
        if (fullView !== 'full') return fail(res, 403, 'analysis needs full exposure', 'forbidden');
        const { stepRanges } = makeTokens();
        const report = makeReport(String(entry.rec.request.messages?.at(-1)?.content ?? ''), entry.rec.tokens, stepRanges);
        entry.analyses.push({ audit_seq: ++seq, created_at: Date.now(), key_name: p.name, level: 'full', report });
        return send(res, 200, { object: 'trace.analysis', trace_id: m[1], level: 'full', audit_seq: seq, report });
      }
      if (m[2] === '/export' && url.searchParams.get('format') === 'otel')
        return send(res, 200, { resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: m[1], name: 'chat mock-reasoner' }] }] }] });
      return send(res, 200, view(entry, fullView));
    }
    return fail(res, 404, `unknown route: ${req.method} ${path}`, 'not_found');
  } catch (e) {
    return fail(res, 500, `internal error: ${e.message}`);
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`mock glassbox: http://127.0.0.1:${port}/ ${proxy ? `(API forwarded to ${proxy})` : '(keys: full-key, summary-key, hidden-key, auditor-key)'}`);
});
