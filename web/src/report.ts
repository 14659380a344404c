// Reads the trace record and the analysis report (docs/analysis-report.md)
// into the shapes the views draw. Every reader is defensive: a member that is
// missing or of the wrong type yields null / an empty list (the panel then says
// so) rather than an exception. Three report shapes exist: the full analysis
// report ("format": "glassbox-analysis"), the server's built-in report
// (steps with "first_line" and a numeric "confidence") and the summary
// exposure's "reasoning_summary" (steps with "title").

export type Json = any;

export function num(x: unknown): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

export function str(x: unknown): string | null {
  return typeof x === 'string' ? x : null;
}

export function arr(x: unknown): any[] {
  return Array.isArray(x) ? x : [];
}

export function obj(x: unknown): Record<string, any> | null {
  return x !== null && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, any>) : null;
}

export interface Alternative {
  id: number | null;
  text: string;
  logprob: number | null;
}

export interface Token {
  index: number;
  id: number | null;
  text: string;
  phase: string;
  origin: string;
  logprob: number | null;
  entropy: number | null;
  confidence: number | null;
  top: Alternative[];
}

export function tokensOf(view: Json): Token[] {
  return arr(obj(view)?.tokens).map((t, i) => {
    const o = obj(t) ?? {};
    return {
      index: i,
      id: num(o.id),
      text: str(o.text) ?? '',
      phase: str(o.phase) ?? 'answer',
      origin: str(o.origin) ?? 'sampled',
      logprob: num(o.logprob),
      entropy: num(o.entropy),
      confidence: num(o.confidence),
      // Records hold {id, text, logprob}; the analysis report's own trace [id, logprob].
      top: arr(o.top).map((a) => {
        if (Array.isArray(a)) return { id: num(a[0]), text: `#${a[0]}`, logprob: num(a[1]) };
        const ao = obj(a) ?? {};
        return { id: num(ao.id), text: str(ao.text) ?? str(ao.token) ?? '', logprob: num(ao.logprob) };
      }),
    };
  });
}

export const isThinking = (t: Token) => t.phase === 'thinking' || t.phase === 'open_marker' || t.phase === 'close_marker';

export interface StepRow {
  index: number;
  text: string;
  role: string | null;
  tokens: [number, number] | null; // trace indices [begin, end)
  tokenCount: number | null;
  confidence: number | null; // mean token confidence
  minConfidence: number | null;
  importance: number | null; // [0, 1], normalised over steps
  importanceDelta: number | null;
  leastLikely: string | null;
}

export interface Flags {
  decisive: number | null;
  mostImportant: number | null;
  lowestConfidence: number | null;
  leastLikelyToken: number | null;
  finalResult: number | null;
}

export interface StepTable {
  source: 'analysis' | 'builtin' | 'summary';
  steps: StepRow[];
  flags: Flags;
}

function span(x: unknown): [number, number] | null {
  const a = arr(x);
  const b = num(a[0]);
  const e = num(a[1]);
  return b !== null && e !== null && e >= b ? [b, e] : null;
}

export function stepsOf(report: Json, summary: Json = null): StepTable | null {
  const r = obj(report);
  const rawSteps = r ? arr(r.steps) : arr(summary);
  if (rawSteps.length === 0) return null;
  const source: StepTable['source'] = !r ? 'summary' : str(r.format) === 'glassbox-analysis' ? 'analysis' : 'builtin';

  const importanceByStep = new Map<number, { importance: number | null; delta: number | null }>();
  const imp = obj(r?.importance);
  if (imp && imp.computed !== false)
    for (const s of arr(imp.steps)) {
      const so = obj(s);
      const step = num(so?.step);
      if (so && step !== null) importanceByStep.set(step, { importance: num(so.importance), delta: num(so.removed_delta) });
    }

  const steps = rawSteps.map((s, i): StepRow => {
    const o = obj(s) ?? {};
    const index = num(o.index) ?? num(o.step) ?? i;
    const c = o.confidence;
    const tokens = span(o.tokens);
    const imp = importanceByStep.get(index);
    return {
      index,
      text: str(o.text) ?? str(o.first_line) ?? str(o.title) ?? '',
      role: str(o.role),
      tokens,
      tokenCount: tokens ? tokens[1] - tokens[0] : num(o.tokens),
      confidence: num(c) ?? num(obj(c)?.mean) ?? num(o.mean_confidence),
      minConfidence: num(obj(c)?.min),
      importance: imp?.importance ?? null,
      importanceDelta: imp?.delta ?? null,
      leastLikely: str(obj(o.least_likely_token)?.text),
    };
  });
  const f = obj(r?.flags) ?? {};
  const leastConfident = num(r?.least_confident_step); // the built-in report's flag
  return {
    source,
    steps,
    flags: {
      decisive: num(f.decisive),
      mostImportant: num(f.most_important),
      lowestConfidence: num(f.lowest_confidence) ?? leastConfident,
      leastLikelyToken: num(f.least_likely_token),
      finalResult: num(f.final_result),
    },
  };
}

export interface Section<T> {
  data: T | null;
  why: string; // when data is null: why the panel is empty
}

function section<T>(report: Json, key: string, read: (o: Record<string, any>) => T | null): Section<T> {
  const r = obj(report);
  if (!r) return { data: null, why: 'No analysis report for this trace.' };
  const s = obj(r[key]);
  if (!s)
    return {
      data: null,
      why:
        str(r.format) === 'glassbox-analysis'
          ? 'Not in this report.'
          : 'Not in this report: the server attached its built-in report, which holds the steps only.',
    };
  if (s.computed === false) return { data: null, why: `Not computed: ${str(s.skipped) || 'no reason given'}.` };
  const data = read(s);
  return data === null ? { data: null, why: 'The analysis holds no data.' } : { data, why: '' };
}

export interface CurvePoint {
  afterStep: number;
  probability: number;
  greedy: string | null;
  matches: boolean;
}

export interface Curve {
  points: CurvePoint[];
  threshold: number | null;
  decidedStep: number | null;
}

export function curveOf(report: Json): Section<Curve> {
  return section(report, 'early_answer', (s) => {
    const points = arr(s.points)
      .map((p) => {
        const o = obj(p) ?? {};
        const lp = num(o.logprob);
        return {
          afterStep: num(o.after_step) ?? NaN,
          probability: num(o.probability) ?? (lp !== null ? Math.exp(lp) : NaN),
          greedy: str(o.greedy_text),
          matches: o.greedy_matches === true,
        };
      })
      .filter((p) => Number.isFinite(p.afterStep) && Number.isFinite(p.probability))
      .sort((a, b) => a.afterStep - b.afterStep);
    if (points.length === 0) return null;
    return { points, threshold: num(s.threshold), decidedStep: num(s.decided_step) };
  });
}

export interface WordScore {
  word: string;
  bytes: [number, number] | null;
  occlusion: number | null;
  attention: number | null;
}

export interface Attribution {
  question: string;
  words: WordScore[];
  attentionOnQuestion: number | null;
}

export function attributionOf(report: Json): Section<Attribution> {
  return section(report, 'prompt_attribution', (s) => {
    const words = arr(s.words).map((w) => {
      const o = obj(w) ?? {};
      return { word: str(o.word) ?? '', bytes: span(o.bytes), occlusion: num(o.occlusion), attention: num(o.attention) };
    });
    if (words.length === 0) return null;
    return { question: str(s.question) ?? '', words, attentionOnQuestion: num(s.attention_on_question) };
  });
}

export interface Votes {
  votes: { answer: string; count: number; weight: number | null }[];
  majority: string | null;
  winner: string | null;
  agreement: number | null;
  samples: number | null;
  matchesTrace: boolean | null;
  traces: { answer: string; confidence: number | null; stoppedEarly: boolean; warmup: boolean; tokens: number | null }[];
}

export function votesOf(report: Json): Section<Votes> {
  return section(report, 'self_consistency', (s) => {
    const votes = arr(s.votes).map((v) => {
      const o = obj(v) ?? {};
      return { answer: str(o.answer) ?? '', count: num(o.count) ?? 0, weight: num(o.weight) };
    });
    if (votes.length === 0 && arr(s.traces).length === 0) return null;
    return {
      votes,
      majority: str(s.majority),
      winner: str(s.weighted_winner),
      agreement: num(s.agreement),
      samples: num(s.samples),
      matchesTrace: typeof s.winner_matches_trace === 'boolean' ? s.winner_matches_trace : null,
      traces: arr(s.traces).map((t) => {
        const o = obj(t) ?? {};
        return {
          answer: str(o.answer) ?? '',
          confidence: num(o.confidence),
          stoppedEarly: o.stopped_early === true,
          warmup: o.warmup === true,
          tokens: num(o.tokens),
        };
      }),
    };
  });
}

// The question the trace answered: the last user message of the request.
export function questionOf(view: Json): string | null {
  const messages = arr(obj(obj(view)?.request)?.messages);
  for (let i = messages.length - 1; i >= 0; --i) {
    const m = obj(messages[i]);
    if (m?.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    const parts = arr(m.content)
      .map((p) => str(obj(p)?.text))
      .filter((t): t is string => t !== null);
    if (parts.length) return parts.join('');
  }
  const prompt = str(obj(obj(view)?.request)?.prompt);
  return prompt;
}

// The report to show: the newest stored analysis, else the one made with the trace.
export function latestReport(view: Json): { report: Json; origin: string } {
  const analyses = arr(obj(view)?.analyses).filter((a) => obj(obj(a)?.report));
  if (analyses.length) {
    const newest = analyses.reduce((a, b) => ((num(b.created_at) ?? 0) >= (num(a.created_at) ?? 0) ? b : a));
    return { report: newest.report, origin: `analysis of ${new Date(num(newest.created_at) ?? 0).toLocaleString()}` };
  }
  const r = obj(obj(view)?.report);
  return { report: r, origin: r ? 'report made with the trace' : '' };
}
