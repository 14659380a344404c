// The audit trail on SQLite and on PostgreSQL (when GLASSBOX_TEST_PG_URL
// names a server, as .ci/run arranges with start_postgres.sh):
//  - kill -9 of the server during 50 concurrent requests, then a restart:
//    every request that received its complete response is in the store and
//    the chain verifies;
//  - `glassbox audit verify` names the record that was changed, deleted or
//    moved; export and retention work from the command line.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { http, run, startServer, tempDir, thinkBriefly } from './helpers.mjs';

const pgUrl = process.env.GLASSBOX_TEST_PG_URL || '';
const psql = spawnSync('psql', ['--version']).status === 0;
const sqlite3 = spawnSync('sqlite3', ['--version']).status === 0;

// A fresh store location: an SQLite file, or a new schema of the test database.
function freshStore(kind) {
  if (kind === 'sqlite') return path.join(tempDir(), 'audit.db');
  const schema = `glassbox_e2e_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
  const r = spawnSync('psql', [pgUrl, '-v', 'ON_ERROR_STOP=1', '-q', '-c', `CREATE SCHEMA ${schema}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}options=-csearch_path%3D${schema}`;
}

// Runs SQL against a store location (tampering).
function sql(kind, location, statement) {
  const r = kind === 'sqlite'
    ? spawnSync('sqlite3', [location, statement], { encoding: 'utf8' })
    : spawnSync('psql', [location, '-v', 'ON_ERROR_STOP=1', '-q', '-c', statement], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

const backends = [
  { kind: 'sqlite', skip: false },
  { kind: 'postgresql', skip: !pgUrl ? 'GLASSBOX_TEST_PG_URL is not set (tests/server/start_postgres.sh starts a server)' : !psql ? 'psql not found' : false },
];

for (const { kind, skip } of backends) {
  test(`${kind}: kill -9 during 50 concurrent requests loses no completed response`, { skip }, async () => {
    const db = freshStore(kind);
    let server = await startServer({ db, extra: ['--parallel', '2', '--queue', '64'] });
    const client = server.client();
    const completed = [];
    let killed = false;
    let resolveEnough;
    const enough = new Promise((r) => { resolveEnough = r; });
    // The last ten think to the end of the context (hundreds of tokens):
    // short ones alone can all finish in the moment between the twelfth
    // answer and the kill on a fast machine, and then no request would be in
    // flight when it lands.
    const one = async (i) => {
      const long =
        i >= 40
          ? { max_tokens: 2000, thinking_budget_tokens: 1990, glassbox: { min_thinking_tokens: 1900 } }
          : { max_tokens: 16 + (i % 8) };
      const body = { messages: [{ role: 'user', content: `request ${i}` }], seed: i, ...thinkBriefly, ...long };
      if (i % 2) {
        const stream = await client.chat.completions.create({ ...body, stream: true });
        let content = '';
        let traceId = null;
        let usage = null;
        for await (const chunk of stream) {
          traceId ??= chunk.trace_id;
          if (chunk.usage) usage = chunk.usage;
          for (const c of chunk.choices) content += c.delta?.content ?? '';
        }
        // The iterator ends cleanly only after [DONE]: a complete response.
        if (!usage) throw new Error('stream ended without its usage chunk');
        completed.push({ traceId, content });
      } else {
        const r = await client.chat.completions.create(body);
        completed.push({ traceId: r.trace_id, content: r.choices[0].message.content });
      }
      if (completed.length >= 12) resolveEnough();
    };
    const all = Promise.allSettled(Array.from({ length: 50 }, (_, i) => one(i)));
    await Promise.race([enough, all]);
    if (completed.length < 50) {
      await server.kill9();
      killed = true;
    }
    const outcomes = await all;
    const failed = outcomes.filter((o) => o.status === 'rejected').length;
    assert.ok(completed.length >= 12);
    assert.equal(completed.length + failed, 50);
    assert.ok(killed && failed > 0, 'the kill must interrupt requests in flight');
    if (!killed) await server.stop();

    // Restart on the same store: every completed response is there, as sent.
    server = await startServer({ db });
    try {
      for (const c of completed) {
        const t = await http(`${server.url}/v1/traces/${c.traceId}`);
        assert.equal(t.status, 200, `trace ${c.traceId} of a completed response is missing`);
        assert.equal(t.json.answer, c.content);
      }
      const more = await server.client().chat.completions.create({ messages: [{ role: 'user', content: 'after' }], max_tokens: 4 });
      assert.ok(more.trace_id);
    } finally {
      await server.stop();
    }
    const v = run(['audit', 'verify', '--db', db]);
    assert.equal(v.status, 0, `${v.stdout}\n${v.stderr}`);
    assert.match(v.stdout, /^ok: \d+ records verified/);
    const j = JSON.parse(run(['audit', 'verify', '--db', db, '--json']).stdout);
    assert.equal(j.ok, true);
    assert.ok(j.records >= completed.length + 1);
  });

  test(`${kind}: audit verify names a changed, deleted or moved record; export and retention`, {
    skip: skip || (kind === 'sqlite' && !sqlite3 ? 'the sqlite3 command is not installed' : false),
  }, async () => {
    const make = async () => {
      const db = freshStore(kind);
      const server = await startServer({ db });
      const client = server.client();
      const ids = [];
      for (let i = 0; i < 5; ++i)
        ids.push((await client.chat.completions.create({ messages: [{ role: 'user', content: `n${i}` }], max_tokens: 6, seed: i })).trace_id);
      await server.stop();
      assert.equal(run(['audit', 'verify', '--db', db]).status, 0);
      return { db, ids };
    };
    const table = 'glassbox_audit_records';
    const cases = [
      ['change an answer', (ids) => `UPDATE ${table} SET body = replace(body, '"answer":"', '"answer":"X') WHERE seq = 3`, 3],
      ['change the key name column', () => `UPDATE ${table} SET key_name = 'mallory' WHERE seq = 2`, 2],
      ['delete a record', () => `DELETE FROM ${table} WHERE seq = 4`, 4],
      ['delete the newest record', () => `DELETE FROM ${table} WHERE seq = 5`, 5],
      ['swap two records', () => `UPDATE ${table} SET seq = -1 WHERE seq = 2; UPDATE ${table} SET seq = 2 WHERE seq = 4; UPDATE ${table} SET seq = 4 WHERE seq = -1`, 2],
    ];
    for (const [label, statement, seq] of cases) {
      const { db, ids } = await make();
      sql(kind, db, statement(ids));
      const v = run(['audit', 'verify', '--db', db]);
      assert.notEqual(v.status, 0, `${label}: verify should fail`);
      assert.match(v.stderr, new RegExp(`record ${seq}\\b`), `${label}: ${v.stderr}`);
      const j = JSON.parse(run(['audit', 'verify', '--db', db, '--json']).stdout);
      assert.equal(j.first_bad_seq, seq, label);
    }

    // Export and retention on an intact store.
    const { db, ids } = await make();
    const exported = run(['audit', 'export', '--db', db, '--since', '2000-01-01', '--format', 'jsonl']);
    assert.equal(exported.status, 0, exported.stderr);
    const lines = exported.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.record.trace_id), ids);
    assert.ok(lines.every((l) => /^[0-9a-f]{64}$/.test(l.hash)));
    const none = run(['audit', 'export', '--db', db, '--since', String(Math.floor(Date.now() / 1000) + 3600)]);
    assert.equal(none.stdout, '');
    const otel = JSON.parse(run(['audit', 'export', '--db', db, '--format', 'otel']).stdout);
    assert.equal(otel.resourceSpans[0].scopeSpans[0].spans.length, 5);
    const prune = run(['audit', 'prune', '--db', db, '--retain-days', '0']);
    assert.equal(prune.status, 0, prune.stderr);
    assert.match(prune.stdout, /deleted 5 records/);
    const after = run(['audit', 'verify', '--db', db]);
    assert.equal(after.status, 0, after.stderr);
    const remaining = run(['audit', 'export', '--db', db]).stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(remaining.length, 1);
    assert.equal(remaining[0].record.kind, 'retention');
    assert.equal(remaining[0].record.deleted.length, 5);
  });
}

test('the server prunes on start with --retain-days', async () => {
  const db = path.join(tempDir(), 'audit.db');
  let server = await startServer({ db });
  const r = await server.client().chat.completions.create({ messages: [{ role: 'user', content: 'x' }], ...thinkBriefly });
  await server.stop();
  server = await startServer({ db, extra: ['--retain-days', '0.00000001'] });
  try {
    const t = await http(`${server.url}/v1/traces/${r.trace_id}`);
    assert.equal(t.status, 404);
    const v = await http(`${server.url}/v1/audit/verify`);
    assert.equal(v.json.ok, true);
  } finally {
    await server.stop();
  }
});
