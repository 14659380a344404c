// Trace view (/traces/{id}): one generation as pictures. Tokens coloured by
// confidence with their alternatives on hover, confidence over time, the
// steps with roles, confidence and importance, the early-answer curve with
// the decision marked, prompt attribution over the question, and the
// self-consistency votes. The page shows what the server sends for the key's
// exposure: under `summary` the step summary only, under `hidden` nothing of
// the reasoning.
import { getJson, getText, postJson } from '../api';
import { confidenceChart, earlyAnswerChart } from '../charts';
import { bar, clear, download, errorBox, fmt, fmtTime, h, note, visibleToken } from '../dom';
import {
  attributionOf,
  curveOf,
  latestReport,
  num,
  obj,
  questionOf,
  stepsOf,
  str,
  tokensOf,
  votesOf,
  type Attribution,
  type Json,
  type StepTable,
  type Token,
} from '../report';
import { confidenceFraction } from './chat';

type ColorBy = 'confidence' | 'probability' | 'entropy';

function panel(title: string, role: string, ...body: (Node | string | null)[]): HTMLElement {
  return h('section', { class: 'panel', 'data-panel': role }, h('h2', null, title), ...body);
}

// --------------------------------------------------------------- colours

// A colour for a value in [0, 1]: red (0, uncertain) through amber to green (1).
function heat(fraction: number): string {
  const f = Math.max(0, Math.min(1, fraction));
  return `hsla(${Math.round(f * 130)}, 70%, 45%, 0.55)`;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return sorted[i];
}

// Maps each token to [0, 1] (1: most certain) for the chosen measure.
// Confidence and entropy have no fixed range: the trace's own 5th-95th
// percentiles span the scale, so that one outlier does not wash it out.
function scaler(tokens: Token[], by: ColorBy): { of: (t: Token) => number | null; low: string; high: string } {
  if (by === 'probability')
    return { of: (t) => (t.logprob === null ? null : Math.exp(t.logprob)), low: 'p 0', high: 'p 1' };
  const values = tokens
    .map((t) => (by === 'confidence' ? t.confidence : t.entropy))
    .filter((v): v is number => v !== null)
    .sort((a, b) => a - b);
  const lo = quantile(values, 0.05);
  const hi = quantile(values, 0.95);
  const span = hi - lo || 1;
  const f = (v: number) => Math.max(0, Math.min(1, (v - lo) / span));
  if (by === 'confidence')
    return { of: (t) => (t.confidence === null ? null : f(t.confidence)), low: `conf ≤ ${fmt(lo)}`, high: `conf ≥ ${fmt(hi)}` };
  return { of: (t) => (t.entropy === null ? null : 1 - f(t.entropy)), low: `entropy ≥ ${fmt(hi)}`, high: `entropy ≤ ${fmt(lo)}` };
}

// --------------------------------------------------------------- tooltip

function showTokenTip(t: Token, anchor: Element): void {
  const tip = document.getElementById('tooltip');
  if (!tip) return;
  clear(tip);
  const p = t.logprob === null ? null : Math.exp(t.logprob);
  const rows = t.top.map((a) => {
    const pa = a.logprob === null ? null : Math.exp(a.logprob);
    const chosen = a.id !== null && t.id !== null ? a.id === t.id : a.text === t.text;
    return h(
      'tr',
      { class: chosen ? 'chosen' : '' },
      h('td', { class: 'alt-text' }, visibleToken(a.text)),
      h('td', null, bar(pa, pa === null ? '–' : `${(pa * 100).toFixed(1)}%`, 'small')),
    );
  });
  tip.append(
    h('div', { class: 'tip-token' }, visibleToken(t.text)),
    h(
      'div',
      { class: 'tip-stats' },
      `p ${p === null ? '–' : (p * 100).toFixed(1) + '%'} · confidence ${fmt(t.confidence)} · entropy ${fmt(t.entropy)}`,
    ),
    h('div', { class: 'tip-phase' }, `${t.phase.replace('_', ' ')}${t.origin !== 'sampled' ? ' · ' + t.origin.replace(/_/g, ' ') : ''}`),
    rows.length
      ? h('table', { class: 'alternatives', 'data-role': 'alternatives' }, h('caption', null, 'Top alternatives'), h('tbody', null, rows))
      : h('div', { class: 'note' }, 'No alternatives recorded.'),
  );
  tip.hidden = false;
  const r = anchor.getBoundingClientRect();
  const w = tip.offsetWidth;
  const hgt = tip.offsetHeight;
  let left = r.left;
  if (left + w > window.innerWidth - 8) left = Math.max(8, window.innerWidth - w - 8);
  let top = r.bottom + 6;
  if (top + hgt > window.innerHeight - 8) top = Math.max(8, r.top - hgt - 6);
  tip.style.left = `${left}px`;
  tip.style.top = `${top}px`;
}

function hideTip(): void {
  const tip = document.getElementById('tooltip');
  if (tip) tip.hidden = true;
}

// --------------------------------------------------------------- tokens

function tokenPanel(tokens: Token[], exposure: string, withheld: number | null): HTMLElement {
  const body = h('div', { class: 'token-body' });
  const legend = h('div', { class: 'legend' });
  const select = h(
    'select',
    { 'aria-label': 'colour tokens by' },
    h('option', { value: 'confidence' }, 'confidence'),
    h('option', { value: 'probability' }, 'probability'),
    h('option', { value: 'entropy' }, 'entropy'),
  );
  const spans: HTMLElement[] = [];
  const thinking = h('div', { class: 'tokens thinking-tokens', 'data-role': 'thinking-tokens' });
  const answer = h('div', { class: 'tokens answer-tokens', 'data-role': 'answer-tokens' });
  for (const t of tokens) {
    const span = h('span', { class: `tok phase-${t.phase}`, 'data-i': t.index }, t.text);
    if (t.origin !== 'sampled') span.classList.add('forced');
    spans.push(span);
    (t.phase === 'answer' || t.phase === 'before_thinking' ? answer : thinking).append(span);
  }
  const paint = () => {
    const s = scaler(tokens, select.value as ColorBy);
    tokens.forEach((t, i) => {
      const f = s.of(t);
      spans[i].style.backgroundColor = f === null ? '' : heat(f);
    });
    clear(legend);
    legend.append(
      h('span', null, s.low),
      h('span', { class: 'legend-ramp' }, ...[0, 0.25, 0.5, 0.75, 1].map((f) => h('span', { style: `background:${heat(f)}` }))),
      h('span', null, s.high),
    );
  };
  select.addEventListener('change', paint);
  paint();

  body.addEventListener('mouseover', (e) => {
    const el = (e.target as Element).closest('.tok') as HTMLElement | null;
    if (!el) return;
    const t = tokens[Number(el.dataset.i)];
    if (t) showTokenTip(t, el);
  });
  body.addEventListener('mouseleave', hideTip);

  if (thinking.childElementCount) body.append(h('h3', null, 'Thinking'), thinking);
  else if (exposure !== 'full')
    body.append(
      note(
        `Reasoning tokens are not shown to this key (exposure: ${exposure}${withheld ? `, ${withheld} tokens withheld` : ''}).`,
        'note withheld',
      ),
    );
  if (answer.childElementCount) body.append(h('h3', null, 'Answer'), answer);
  if (!tokens.length) body.append(note('This trace holds no tokens.'));

  return panel(
    'Tokens',
    'tokens',
    h('div', { class: 'panel-tools' }, h('label', null, 'Colour by ', select), legend),
    h('p', { class: 'hint' }, 'Hover a token to see the alternatives the model weighed.'),
    body,
  );
}

// --------------------------------------------------------------- steps

const ROLE_HINT: Record<string, string> = {
  setup: 'restating or planning',
  compute: 'a calculation',
  check: 'verifying',
  backtrack: 'changing course',
  conclude: 'reaching the answer',
};

function stepsPanel(table: StepTable | null, why: string, onHover: (range: [number, number] | null) => void): HTMLElement {
  if (!table) return panel('Steps', 'steps', note(why));
  const { steps, flags } = table;
  const showImportance = steps.some((s) => s.importance !== null);
  const showRole = steps.some((s) => s.role !== null);
  const head = h(
    'tr',
    null,
    h('th', null, '#'),
    showRole ? h('th', null, 'Role') : null,
    h('th', null, table.source === 'summary' ? 'Step (abridged)' : 'Step'),
    h('th', null, 'Tokens'),
    h('th', null, 'Confidence'),
    showImportance ? h('th', null, 'Importance') : null,
  );
  const rows = steps.map((s) => {
    const marks: string[] = [];
    if (flags.decisive === s.index) marks.push('decided');
    if (flags.mostImportant === s.index) marks.push('most important');
    if (flags.lowestConfidence === s.index) marks.push('least confident');
    if (flags.leastLikelyToken === s.index) marks.push('least likely token');
    if (flags.finalResult === s.index) marks.push('final result');
    const tr = h(
      'tr',
      { class: flags.decisive === s.index ? 'decisive' : '', 'data-step': s.index },
      h('td', { class: 'num' }, String(s.index)),
      showRole ? h('td', null, s.role ? h('span', { class: `role role-${s.role}`, title: ROLE_HINT[s.role] ?? '' }, s.role) : '') : null,
      h(
        'td',
        { class: 'step-text' },
        h('span', null, s.text),
        ...marks.map((m) => h('span', { class: `flag flag-${m.replace(/ /g, '-')}` }, m)),
      ),
      h('td', { class: 'num' }, s.tokenCount === null ? '–' : String(s.tokenCount)),
      h('td', null, bar(s.confidence === null ? null : confidenceFraction(s.confidence), fmt(s.confidence), 'conf')),
      showImportance
        ? h(
            'td',
            null,
            bar(s.importance, s.importance === null ? '–' : `${Math.round(s.importance * 100)}%`, 'importance'),
          )
        : null,
    );
    if (s.tokens) {
      const range = s.tokens;
      tr.addEventListener('mouseenter', () => onHover(range));
      tr.addEventListener('mouseleave', () => onHover(null));
    }
    return tr;
  });
  const source =
    table.source === 'summary'
      ? 'The summary exposure: each step’s abridged first line and its mean confidence.'
      : table.source === 'builtin'
        ? 'Steps from the server’s built-in report (paragraphs of the thinking).'
        : 'Steps from the analysis report; hover a row to find its tokens.';
  return panel(
    'Steps',
    'steps',
    h('p', { class: 'hint' }, source),
    h('div', { class: 'table-wrap' }, h('table', { class: 'steps', 'data-role': 'steps' }, h('thead', null, head), h('tbody', null, rows))),
  );
}

// --------------------------------------------------------------- attribution

function attributionPanel(question: string | null, attribution: Attribution | null, why: string): HTMLElement {
  if (!attribution)
    return panel(
      'Question',
      'attribution',
      question !== null ? h('blockquote', { class: 'question' }, question) : null,
      note(`Prompt attribution: ${why}`),
    );
  const metric = h(
    'select',
    { 'aria-label': 'attribution measure' },
    h('option', { value: 'occlusion' }, 'occlusion (answer log-prob lost without the word)'),
    h('option', { value: 'attention' }, 'attention from the answer'),
  );
  const hasOcclusion = attribution.words.some((w) => w.occlusion !== null);
  if (!hasOcclusion) metric.value = 'attention';
  const view = h('blockquote', { class: 'question heatmap', 'data-role': 'attribution' });
  const text = attribution.question || question || '';
  const bytes = new TextEncoder().encode(text);
  const decode = (b: number, e: number) => new TextDecoder().decode(bytes.slice(b, e));
  const paint = () => {
    clear(view);
    const by = metric.value as 'occlusion' | 'attention';
    const values = attribution.words.map((w) => (by === 'occlusion' ? w.occlusion : w.attention));
    const max = Math.max(1e-9, ...values.map((v) => Math.abs(v ?? 0)));
    let at = 0;
    attribution.words.forEach((w, i) => {
      const v = values[i];
      const usable = w.bytes && w.bytes[0] >= at && w.bytes[1] <= bytes.length;
      if (usable && w.bytes![0] > at) view.append(decode(at, w.bytes![0]));
      else if (!usable && i > 0) view.append(' ');
      const f = v === null ? 0 : v / max;
      // Positive: the word supports the answer (warm); negative: it works against it (cool).
      const bg = v === null ? 'transparent' : f >= 0 ? `rgba(255, 140, 60, ${(0.12 + 0.78 * f).toFixed(3)})` : `rgba(80, 150, 255, ${(0.12 + 0.78 * -f).toFixed(3)})`;
      view.append(
        h(
          'span',
          { class: 'word', style: `background:${bg}`, title: `${by} ${v === null ? 'not computed' : v.toFixed(4)}` },
          usable ? decode(w.bytes![0], w.bytes![1]) : w.word,
        ),
      );
      if (usable) at = w.bytes![1];
    });
    if (at > 0 && at < bytes.length) view.append(decode(at, bytes.length));
  };
  metric.addEventListener('change', paint);
  paint();
  return panel(
    'Question · prompt attribution',
    'attribution',
    h('div', { class: 'panel-tools' }, h('label', null, 'Measure ', metric)),
    view,
    attribution.attentionOnQuestion !== null
      ? h('p', { class: 'hint' }, `${(attribution.attentionOnQuestion * 100).toFixed(1)}% of the answer’s attention lands on the question.`)
      : null,
  );
}

// --------------------------------------------------------------- votes

function votesPanel(report: Json): HTMLElement | null {
  const { data, why } = votesOf(report);
  if (!data) {
    // Self-consistency runs only on request: say so briefly.
    return obj(report) && obj(report.self_consistency) ? panel('Self-consistency', 'votes', note(why)) : null;
  }
  const total = data.votes.reduce((s, v) => s + v.count, 0) || 1;
  const maxWeight = Math.max(1e-9, ...data.votes.map((v) => v.weight ?? 0));
  const rows = data.votes.map((v) =>
    h(
      'tr',
      { class: v.answer === data.winner ? 'winner' : '' },
      h('td', { class: 'answer-cell' }, v.answer || '(none)'),
      h('td', null, bar(v.count / total, `${v.count} vote${v.count === 1 ? '' : 's'}`)),
      h('td', null, bar(v.weight === null ? null : v.weight / maxWeight, fmt(v.weight), 'importance')),
    ),
  );
  return panel(
    'Self-consistency',
    'votes',
    h(
      'p',
      { class: 'hint' },
      `${data.samples ?? data.traces.length} sampled traces · majority “${data.majority ?? '–'}” · confidence-weighted winner “${data.winner ?? '–'}”` +
        (data.agreement !== null ? ` · agreement ${(data.agreement * 100).toFixed(0)}%` : '') +
        (data.matchesTrace === null ? '' : data.matchesTrace ? ' · agrees with this trace' : ' · differs from this trace'),
    ),
    h(
      'table',
      { class: 'votes', 'data-role': 'votes' },
      h('thead', null, h('tr', null, h('th', null, 'Answer'), h('th', null, 'Votes'), h('th', null, 'Weight'))),
      h('tbody', null, rows),
    ),
  );
}

// --------------------------------------------------------------- page

function metaRow(label: string, value: Node | string): HTMLElement {
  return h('div', { class: 'meta-item' }, h('span', { class: 'meta-label' }, label), h('span', null, value));
}

function render(root: HTMLElement, id: string, view: Json, reload: () => void): void {
  const exposure = str(view.exposure) ?? 'full';
  const tokens = tokensOf(view);
  const usage = obj(view.usage) ?? {};
  const { report, origin } = latestReport(view);
  const status = h('div', { class: 'status' });

  const exportButton = (format: 'json' | 'otel') =>
    h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        onclick: async () => {
          try {
            const text = await getText(`/v1/traces/${encodeURIComponent(id)}/export?format=${format}`);
            download(`trace-${id}.${format === 'otel' ? 'otel.json' : 'json'}`, text, 'application/json');
          } catch (e) {
            clear(status);
            status.append(errorBox(`Export failed: ${(e as Error).message}`));
          }
        },
      },
      format === 'json' ? 'Export JSON' : 'Export OTel',
    );
  const analyze = h('button', { type: 'button', class: 'primary' }, 'Analyze');
  analyze.addEventListener('click', async () => {
    analyze.disabled = true;
    analyze.textContent = 'Analyzing…';
    clear(status);
    try {
      await postJson(`/v1/traces/${encodeURIComponent(id)}/analyze`, { level: 'full' });
      reload();
    } catch (e) {
      status.append(errorBox(`Analysis failed: ${(e as Error).message}`));
      analyze.disabled = false;
      analyze.textContent = 'Analyze';
    }
  });

  const audit = obj(view.audit);
  const header = h(
    'div',
    { class: 'trace-header' },
    h(
      'div',
      { class: 'trace-title' },
      h('h1', null, 'Trace ', h('code', null, id)),
      h('span', { class: `badge exposure-${exposure}`, 'data-role': 'exposure' }, `${exposure} exposure`),
    ),
    h(
      'div',
      { class: 'meta-grid' },
      metaRow('model', str(view.model) ?? '–'),
      metaRow('created', fmtTime(num(view.created_at))),
      metaRow('key', str(view.key_name) || '(none)'),
      metaRow('finish', str(view.finish_reason) ?? '–'),
      metaRow(
        'tokens',
        `${num(usage.prompt_tokens) ?? '–'} prompt · ${num(usage.reasoning_tokens) ?? '–'} thinking · ${num(usage.answer_tokens) ?? '–'} answer`,
      ),
      metaRow('generate', `${fmt(num(obj(view.timing)?.generate_ms), 0)} ms`),
      metaRow('audit', audit ? `seq ${num(audit.seq) ?? '–'} · ${String(str(audit.hash) ?? '').slice(0, 16)}…` : '–'),
    ),
    h('div', { class: 'actions' }, exposure === 'full' ? analyze : null, exportButton('json'), exportButton('otel')),
    status,
  );

  const sections: (HTMLElement | null)[] = [header];
  const reportError = str(obj(report)?.error);
  if (reportError) sections.push(errorBox(`The analysis failed: ${reportError}`));

  // Question and prompt attribution.
  const attribution = attributionOf(report);
  sections.push(attributionPanel(questionOf(view), attribution.data, exposure === 'full' ? attribution.why : 'not shown to this key.'));

  // The answer as text.
  sections.push(panel('Answer', 'answer', h('div', { class: 'answer-text' }, str(view.answer) || '(empty)')));

  // Steps (and their token ranges, for highlighting).
  const steps =
    exposure === 'full'
      ? stepsOf(report)
      : exposure === 'summary'
        ? stepsOf(null, view.reasoning_summary)
        : null;
  const stepsWhy =
    exposure === 'hidden'
      ? 'The reasoning is hidden from this key by the exposure policy.'
      : exposure === 'summary'
        ? 'No reasoning summary (the model did not think).'
        : report
          ? 'The report holds no steps (the model did not think, or thinking was off).'
          : 'No analysis report for this trace: press “Analyze”.';

  // Tokens.
  const tokenSection = tokenPanel(tokens, exposure, num(view.reasoning_tokens_withheld));
  const highlight = (range: [number, number] | null) => {
    tokenSection.querySelectorAll('.tok.hl').forEach((el) => el.classList.remove('hl'));
    if (!range) return;
    tokenSection.querySelectorAll<HTMLElement>('.tok').forEach((el) => {
      const i = Number(el.dataset.i);
      if (i >= range[0] && i < range[1]) el.classList.add('hl');
    });
  };
  sections.push(tokenSection);

  // Confidence over time, with the decisive step's last token marked.
  const curve = curveOf(report);
  let decisionToken: number | null = null;
  const decided = curve.data?.decidedStep ?? steps?.flags.decisive ?? null;
  if (decided !== null && steps) {
    const s = steps.steps.find((x) => x.index === decided);
    if (s?.tokens) decisionToken = s.tokens[1] - 1;
  }
  if (tokens.some((t) => t.confidence !== null))
    sections.push(
      panel(
        'Confidence over time',
        'confidence',
        h('p', { class: 'hint' }, 'DeepConf token confidence (higher: the model was surer) and its sliding mean. Drag to zoom, double-click to reset.'),
        confidenceChart(tokens, 16, decisionToken),
      ),
    );

  sections.push(stepsPanel(steps, stepsWhy, highlight));

  // Early-answer curve.
  if (exposure === 'full') {
    const c = curve.data;
    sections.push(
      panel(
        'Early answer: P(final answer) if the thinking stopped after each step',
        'early-answer',
        c
          ? h(
              'p',
              { class: 'hint', 'data-role': 'decision' },
              c.decidedStep === null
                ? 'The answer never stays above the threshold: it was not settled before the thinking ended.'
                : c.decidedStep < 0
                  ? 'The answer was settled before the thinking began.'
                  : `Decided at step ${c.decidedStep}: from there on the final answer stays above ${fmt(c.threshold)} probability.`,
            )
          : null,
        c ? earlyAnswerChart(c) : note(curve.why),
      ),
    );
    sections.push(votesPanel(report));
    if (origin) sections.push(h('p', { class: 'hint small' }, `Analysis shown: ${origin}.`));
  } else {
    sections.push(
      panel(
        'Analysis',
        'analysis-withheld',
        note(`The analysis report is not shown to keys with ${exposure} exposure; an auditor or a full-exposure key sees it.`),
      ),
    );
  }

  clear(root);
  root.append(h('section', { class: 'view trace-view' }, ...sections.filter((s): s is HTMLElement => s !== null)));
}

export function traceView(root: HTMLElement, id: string): () => void {
  let alive = true;
  const load = async () => {
    clear(root);
    root.append(h('section', { class: 'view' }, note('Loading trace…')));
    try {
      const view = await getJson(`/v1/traces/${encodeURIComponent(id)}`);
      if (!alive) return;
      if (!obj(view)) throw new Error('the server returned no trace object');
      render(root, id, view, load);
    } catch (e) {
      if (!alive) return;
      clear(root);
      root.append(h('section', { class: 'view' }, h('h1', null, 'Trace ', h('code', null, id)), errorBox((e as Error).message)));
    }
  };
  void load();
  return () => {
    alive = false;
    hideTip();
  };
}
