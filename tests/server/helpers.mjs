// Shared helpers of the glassbox serve end-to-end tests: find the binary and
// a model, start and stop servers, make API keys.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

const here = path.dirname(fileURLToPath(import.meta.url));
export const sourceDir = process.env.GLASSBOX_SOURCE_DIR || path.resolve(here, '..', '..');

function findBinary() {
  const candidates = [process.env.GLASSBOX_BIN, path.join(sourceDir, 'build', 'glassbox')].filter(Boolean);
  for (const c of candidates) if (fs.existsSync(c)) return c;
  throw new Error(`glassbox binary not found (set GLASSBOX_BIN); tried ${candidates.join(', ')}`);
}
export const glassbox = findBinary();

// The tiny reasoner when it is there; else the random reference model with a
// DeepSeek-R1 template whose generation prompt opens the thinking block.
function chooseModel() {
  const tiny = path.join(sourceDir, 'models', 'glassbox-tiny-reasoner.gguf');
  if (!process.env.GLASSBOX_TEST_RANDOM_MODEL && fs.existsSync(tiny)) return { args: ['-m', tiny], name: 'tiny' };
  const ref = path.join(sourceDir, 'tests', 'data', 'reference');
  return {
    args: [
      '-m', path.join(ref, 'models', 'rand-qwen3.f32.gguf'),
      '--template', path.join(ref, 'templates', 'templates', 'deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja'),
      '--kwargs', '{"enable_thinking":true}',
    ],
    name: 'random',
  };
}
export const model = chooseModel();

export function tempDir(prefix = 'glassbox-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// Runs glassbox synchronously; returns {status, stdout, stderr}.
export function run(args, options = {}) {
  const r = spawnSync(glassbox, args, { encoding: 'utf8', timeout: 120_000, ...options });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', signal: r.signal };
}

export function addKey(config, name, role, exposure) {
  const r = run(['keys', 'add', name, '--role', role, '--exposure', exposure, '--config', config]);
  if (r.status !== 0) throw new Error(`keys add failed: ${r.stderr}`);
  return r.stdout.trim();
}

// Starts `glassbox serve` on a free port; resolves once it listens.
export async function startServer({ db, config, extra = [], env = {} } = {}) {
  const args = ['serve', ...model.args, '--port', '0', '--host', '127.0.0.1', '--threads', '1'];
  if (db) args.push('--db', db);
  if (config) args.push('--config', config);
  args.push(...extra);
  const proc = spawn(glassbox, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time:\n${stderr}`)), 60_000);
    proc.stdout.on('data', (d) => {
      stdout += d;
      const m = stdout.match(/listening on (http:\/\/[0-9.]+:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening:\n${stderr}`));
    });
  });
  proc.removeAllListeners('exit');
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    url,
    proc,
    stderr: () => stderr,
    client: (apiKey = 'no-key') => new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0, timeout: 120_000 }),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
    async kill9() {
      proc.kill('SIGKILL');
      return exited;
    },
  };
}

// Raw HTTP with fetch: {status, json, text}.
export async function http(url, { method = 'GET', body, key, headers = {}, raw = false } = {}) {
  const h = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  if (body !== undefined && !raw) h['content-type'] = 'application/json';
  const res = await fetch(url, { method, headers: h, body: body === undefined ? undefined : raw ? body : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text, headers: res.headers };
}

// Settings that make the random model think a little and then answer.
export const thinkBriefly = { max_tokens: 24, thinking_budget_tokens: 8, temperature: 1.0, top_p: 1.0, top_k: 0, min_p: 0 };

// Reads an SSE response body into its data payloads (strings), for checks
// on the raw bytes the client received.
export async function sseEvents(url, body, key) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const data = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
  return { status: res.status, text, data };
}
