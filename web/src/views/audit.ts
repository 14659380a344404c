// Audit view (/audit): list and search the traces, verify the hash chain,
// export traces and the audit log. Auditors see every trace; a client key
// sees its own, and the server refuses it verification and export.
import { getJson, getText } from '../api';
import { clear, download, errorBox, fmtTime, h, note } from '../dom';
import { arr, num, obj, str } from '../report';
import { navigate, traceHref } from '../router';

interface Filters {
  key: string;
  model: string;
  since: string; // datetime-local
  until: string;
  order: 'desc' | 'asc';
}

const filters: Filters = { key: '', model: '', since: '', until: '', order: 'desc' };

// datetime-local text -> Unix seconds, which the server accepts.
function unixSeconds(local: string): string | null {
  if (!local) return null;
  const ms = Date.parse(local);
  return Number.isFinite(ms) ? String(Math.floor(ms / 1000)) : null;
}

function query(after: string | null): string {
  const p = new URLSearchParams({ limit: '25', order: filters.order });
  if (filters.key) p.set('key', filters.key);
  if (filters.model) p.set('model', filters.model);
  const since = unixSeconds(filters.since);
  const until = unixSeconds(filters.until);
  if (since) p.set('since', since);
  if (until) p.set('until', until);
  if (after) p.set('after', after);
  return `/v1/traces?${p}`;
}

async function exportTrace(id: string, format: 'json' | 'otel', status: HTMLElement): Promise<void> {
  try {
    const text = await getText(`/v1/traces/${encodeURIComponent(id)}/export?format=${format}`);
    download(`trace-${id}.${format === 'otel' ? 'otel.json' : 'json'}`, text, 'application/json');
  } catch (e) {
    clear(status);
    status.append(errorBox(`Export of ${id} failed: ${(e as Error).message}`));
  }
}

function traceRow(item: Record<string, any>, status: HTMLElement): HTMLElement {
  const id = str(item.id) ?? '';
  const usage = obj(item.usage) ?? {};
  const small = (label: string, onclick: () => void) => h('button', { type: 'button', class: 'link-button', onclick }, label);
  return h(
    'tr',
    { 'data-trace': id },
    h('td', null, fmtTime(num(item.created_at))),
    h('td', null, h('a', { href: traceHref(id), 'data-link': true }, h('code', null, id.slice(0, 12)))),
    h('td', null, str(item.model) ?? ''),
    h('td', null, str(item.key_name) || '–'),
    h('td', null, str(item.finish_reason) ?? ''),
    h('td', { class: 'num' }, String(num(usage.prompt_tokens) ?? '–')),
    h('td', { class: 'num' }, String(num(usage.reasoning_tokens) ?? '–')),
    h('td', { class: 'num' }, String(num(usage.answer_tokens) ?? num(usage.completion_tokens) ?? '–')),
    h('td', { class: 'num' }, String(num(item.audit_seq) ?? '–')),
    h(
      'td',
      { class: 'row-actions' },
      small('JSON', () => exportTrace(id, 'json', status)),
      small('OTel', () => exportTrace(id, 'otel', status)),
    ),
  );
}

function verifyPanel(): HTMLElement {
  const result = h('div', { class: 'verify-result', 'data-role': 'verify-result' });
  const button = h('button', { type: 'button', class: 'primary', 'data-control': 'verify' }, 'Verify chain');
  button.addEventListener('click', async () => {
    button.disabled = true;
    clear(result);
    result.append(note('Recomputing every record’s hash…'));
    try {
      const v = await getJson('/v1/audit/verify');
      clear(result);
      const head = obj(v?.head) ?? {};
      if (v?.ok === true) {
        result.append(
          h(
            'div',
            { class: 'ok', role: 'status' },
            `✓ Chain intact: ${num(v.records) ?? '?'} records verified`,
            h('br'),
            h('small', null, `head seq ${num(head.seq) ?? '–'} · hash `, h('code', null, str(head.hash) || '(empty)')),
            h('br'),
            h('small', null, `store ${str(v.store) ?? ''}`),
          ),
        );
      } else {
        result.append(
          errorBox(
            `✗ Chain broken at record ${num(v?.first_bad_seq) ?? '?'}` +
              (str(v?.first_bad_trace_id) ? ` (trace ${v.first_bad_trace_id})` : '') +
              `: ${str(v?.message) ?? 'no detail'}`,
          ),
        );
      }
    } catch (e) {
      clear(result);
      result.append(errorBox(`Verification failed: ${(e as Error).message}`));
    } finally {
      button.disabled = false;
    }
  });
  return h(
    'section',
    { class: 'panel', 'data-panel': 'verify' },
    h('h2', null, 'Verify the audit chain'),
    h('p', { class: 'hint' }, 'Each record holds the hash of the one before; verification recomputes them all and names the first that does not match.'),
    button,
    result,
  );
}

function exportPanel(): HTMLElement {
  const since = h('input', { type: 'datetime-local', name: 'export-since' });
  const until = h('input', { type: 'datetime-local', name: 'export-until' });
  const format = h('select', { name: 'export-format' }, h('option', { value: 'jsonl' }, 'JSON lines'), h('option', { value: 'otel' }, 'OpenTelemetry (OTLP/JSON)'));
  const status = h('div', { class: 'status' });
  const button = h('button', { type: 'button', class: 'secondary' }, 'Export');
  button.addEventListener('click', async () => {
    clear(status);
    button.disabled = true;
    try {
      const p = new URLSearchParams({ format: format.value, limit: '10000' });
      const s = unixSeconds(since.value);
      const u = unixSeconds(until.value);
      if (s) p.set('since', s);
      if (u) p.set('until', u);
      const text = await getText(`/v1/audit/export?${p}`);
      const lines = format.value === 'jsonl' ? text.split('\n').filter(Boolean).length : null;
      download(format.value === 'jsonl' ? 'glassbox-audit.jsonl' : 'glassbox-audit.otel.json', text,
               format.value === 'jsonl' ? 'application/x-ndjson' : 'application/json');
      status.append(h('div', { class: 'ok' }, lines === null ? 'Exported.' : `Exported ${lines} records.`));
    } catch (e) {
      status.append(errorBox(`Export failed: ${(e as Error).message}`));
    } finally {
      button.disabled = false;
    }
  });
  return h(
    'section',
    { class: 'panel', 'data-panel': 'export' },
    h('h2', null, 'Export the audit log'),
    h('div', { class: 'filters' }, h('label', null, 'Since ', since), h('label', null, 'Until ', until), h('label', null, 'Format ', format), button),
    status,
  );
}

export function auditView(root: HTMLElement): () => void {
  let alive = true;
  const status = h('div', { class: 'status' });
  const tbody = h('tbody');
  const more = h('button', { type: 'button', class: 'secondary' }, 'Load more');
  more.hidden = true;
  const count = h('span', { class: 'hint' });
  let lastId: string | null = null;
  let shown = 0;

  const input = (name: keyof Filters, type: string, placeholder = '') => {
    const el = h('input', { type, name, placeholder, value: filters[name] });
    el.addEventListener('change', () => ((filters as any)[name] = el.value));
    return el;
  };
  const search = h('input', { type: 'search', name: 'trace-id', placeholder: 'trace id', 'data-control': 'trace-search' });
  const order = h('select', { name: 'order' }, h('option', { value: 'desc' }, 'newest first'), h('option', { value: 'asc' }, 'oldest first'));
  order.value = filters.order;
  order.addEventListener('change', () => (filters.order = order.value as Filters['order']));

  const load = async (append: boolean) => {
    clear(status);
    if (!append) {
      clear(tbody);
      lastId = null;
      shown = 0;
    }
    more.disabled = true;
    try {
      const page = await getJson(query(append ? lastId : null));
      if (!alive) return;
      const data = arr(page?.data);
      for (const item of data) if (obj(item)) tbody.append(traceRow(item, status));
      shown += data.length;
      lastId = str(page?.last_id) ?? lastId;
      more.hidden = page?.has_more !== true;
      count.textContent = shown === 0 ? 'No traces match.' : `${shown} trace${shown === 1 ? '' : 's'} shown`;
    } catch (e) {
      if (!alive) return;
      status.append(errorBox(`Could not list traces: ${(e as Error).message}`));
    } finally {
      more.disabled = false;
    }
  };

  const form = h(
    'form',
    { class: 'filters', 'data-role': 'trace-filters' },
    h('label', null, 'Key ', input('key', 'text', 'any')),
    h('label', null, 'Model ', input('model', 'text', 'any')),
    h('label', null, 'Since ', input('since', 'datetime-local')),
    h('label', null, 'Until ', input('until', 'datetime-local')),
    h('label', null, 'Order ', order),
    h('button', { type: 'submit', class: 'primary' }, 'Search'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void load(false);
  });
  const idForm = h('form', { class: 'filters' }, h('label', null, 'Open trace ', search), h('button', { type: 'submit', class: 'secondary' }, 'Open'));
  idForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const id = search.value.trim();
    if (id) navigate(traceHref(id));
  });
  more.addEventListener('click', () => void load(true));

  root.append(
    h(
      'section',
      { class: 'view audit-view' },
      h('h1', null, 'Audit'),
      h(
        'section',
        { class: 'panel', 'data-panel': 'traces' },
        h('h2', null, 'Traces'),
        idForm,
        form,
        status,
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'traces', 'data-role': 'traces' },
            h(
              'thead',
              null,
              h(
                'tr',
                null,
                ...['Created', 'Trace', 'Model', 'Key', 'Finish', 'Prompt', 'Thinking', 'Answer', 'Seq', 'Export'].map((t) => h('th', null, t)),
              ),
            ),
            tbody,
          ),
        ),
        h('div', { class: 'list-footer' }, count, more),
      ),
      h('div', { class: 'two-col' }, verifyPanel(), exportPanel()),
    ),
  );
  void load(false);
  return () => {
    alive = false;
  };
}
