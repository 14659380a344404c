// Chat view: talk to the model. The thinking streams into a collapsible panel
// of its own (delta.reasoning_content), the answer below it (delta.content).
// Under the summary exposure the panel shows the step summary the server
// sends; under the hidden exposure it says only that reasoning was withheld.
import { streamChat, type StreamEvent } from '../api';
import { bar, clear, errorBox, fmt, h } from '../dom';
import { arr, num, obj, str } from '../report';
import { traceHref } from '../router';

interface Turn {
  role: 'user' | 'assistant';
  content: string;
  el: HTMLElement; // the rendered message, kept across view changes
  send: boolean; // part of the history sent with the next question
}

interface Settings {
  thinking: boolean;
  budget: string; // tokens; '' for no limit
  maxTokens: string;
  temperature: string; // '' for the model's default
  seed: string;
  analysis: 'none' | 'summary' | 'full';
}

// Kept for the page's lifetime, so that opening a trace and coming back
// finds the conversation as it was.
const turns: Turn[] = [];
const settings: Settings = { thinking: true, budget: '', maxTokens: '512', temperature: '', seed: '', analysis: 'full' };
let running: AbortController | null = null;
// The busy state's setter of the chat view on screen (a reply may finish after the view changed).
let showBusy: ((busy: boolean) => void) | null = null;

function intOrNull(text: string): number | null {
  if (text.trim() === '') return null;
  const n = Number(text);
  return Number.isInteger(n) ? n : null;
}

function requestBody(messages: { role: string; content: string }[]): Record<string, unknown> {
  const body: Record<string, unknown> = { messages, stream_options: { include_usage: true } };
  if (!settings.thinking) {
    body.chat_template_kwargs = { enable_thinking: false };
    body.reasoning_effort = 'none';
  } else {
    // Said explicitly: some templates think only when asked (`if not enable_thinking`).
    body.chat_template_kwargs = { enable_thinking: true };
    const budget = intOrNull(settings.budget);
    if (budget !== null) body.thinking_budget_tokens = budget;
  }
  const max = intOrNull(settings.maxTokens);
  if (max !== null) body.max_tokens = max;
  const seed = intOrNull(settings.seed);
  if (seed !== null) body.seed = seed;
  if (settings.temperature.trim() !== '' && Number.isFinite(Number(settings.temperature)))
    body.temperature = Number(settings.temperature);
  if (settings.analysis !== 'none') body.glassbox = { analysis: settings.analysis };
  return body;
}

function field(label: string, input: HTMLElement, hint = ''): HTMLElement {
  return h('label', { class: 'field', title: hint }, h('span', null, label), input);
}

function settingsPanel(): HTMLElement {
  const thinking = h('input', { type: 'checkbox', name: 'thinking', 'data-control': 'thinking' });
  thinking.checked = settings.thinking;
  const budget = h('input', {
    type: 'number',
    name: 'budget',
    min: 0,
    step: 1,
    placeholder: 'no limit',
    'data-control': 'budget',
    value: settings.budget,
  });
  const maxTokens = h('input', { type: 'number', name: 'max_tokens', min: 1, step: 1, value: settings.maxTokens });
  const temperature = h('input', {
    type: 'number',
    name: 'temperature',
    min: 0,
    max: 2,
    step: 0.1,
    placeholder: 'model',
    value: settings.temperature,
  });
  const seed = h('input', { type: 'number', name: 'seed', step: 1, placeholder: 'random', value: settings.seed });
  const analysis = h(
    'select',
    { name: 'analysis' },
    h('option', { value: 'none' }, 'none'),
    h('option', { value: 'summary' }, 'summary'),
    h('option', { value: 'full' }, 'full'),
  );
  analysis.value = settings.analysis;
  const sync = () => {
    settings.thinking = thinking.checked;
    settings.budget = budget.value;
    settings.maxTokens = maxTokens.value;
    settings.temperature = temperature.value;
    settings.seed = seed.value;
    settings.analysis = analysis.value as Settings['analysis'];
    budget.disabled = !thinking.checked;
  };
  sync();
  for (const el of [thinking, budget, maxTokens, temperature, seed, analysis]) {
    el.addEventListener('input', sync);
    el.addEventListener('change', sync);
  }
  return h(
    'div',
    { class: 'settings' },
    h('label', { class: 'field toggle' }, thinking, h('span', null, 'Thinking')),
    field('Budget', budget, 'most thinking tokens; the thinking is closed when it is reached'),
    field('Max tokens', maxTokens),
    field('Temperature', temperature),
    field('Seed', seed),
    field('Analysis', analysis, 'the report stored with the trace (steps, early answer, attribution)'),
  );
}

function userMessage(text: string): HTMLElement {
  return h('div', { class: 'msg user', 'data-role': 'user' }, h('div', { class: 'bubble' }, text));
}

// Appends streamed text; the blank lines a model writes first are not shown.
function appendTrimmingStart(el: HTMLElement, text: string): void {
  const shown = el.textContent ? text : text.replace(/^\s+/, '');
  if (shown) el.append(shown);
}

// An assistant message under construction.
class AssistantMessage {
  readonly el: HTMLElement;
  private readonly panel: HTMLDetailsElement;
  private readonly panelTitle: HTMLElement;
  private readonly thinkingText: HTMLElement;
  private readonly answer: HTMLElement;
  private readonly meta: HTMLElement;
  private started = performance.now();
  private thinkingEnded: number | null = null;
  private reasoningChars = 0;
  content = '';
  traceId = '';

  constructor() {
    this.panelTitle = h('span', { class: 'thinking-title' }, 'Thinking…');
    this.thinkingText = h('div', { class: 'thinking-text', 'data-role': 'thinking' });
    this.panel = h(
      'details',
      { class: 'thinking streaming', open: true, 'data-role': 'thinking-panel' },
      h('summary', null, this.panelTitle),
      this.thinkingText,
    );
    this.panel.hidden = true;
    this.answer = h('div', { class: 'answer', 'data-role': 'answer' });
    this.meta = h('div', { class: 'meta' });
    this.el = h('div', { class: 'msg assistant' }, this.panel, this.answer, this.meta);
  }

  reasoning(text: string): void {
    this.panel.hidden = false;
    this.reasoningChars += text.length;
    appendTrimmingStart(this.thinkingText, text);
  }

  summary(steps: unknown): void {
    this.panel.hidden = false;
    clear(this.thinkingText);
    this.thinkingText.dataset.role = 'thinking-summary';
    this.panelTitle.textContent = 'Reasoning summary';
    const list = h('ol', { class: 'summary-steps' });
    for (const s of arr(steps)) {
      const o = obj(s) ?? {};
      const c = num(o.confidence);
      list.append(
        h(
          'li',
          null,
          h('span', { class: 'summary-title' }, str(o.title) ?? ''),
          ' ',
          bar(c === null ? null : confidenceFraction(c), `${fmt(c)} conf · ${num(o.tokens) ?? '?'} tok`, 'small'),
        ),
      );
    }
    this.thinkingText.append(list);
  }

  answerText(text: string): void {
    if (this.thinkingEnded === null) this.endThinking();
    this.content += text;
    appendTrimmingStart(this.answer, text);
  }

  private endThinking(): void {
    this.thinkingEnded = performance.now();
    this.panel.classList.remove('streaming');
    if (this.reasoningChars > 0) {
      const seconds = (this.thinkingEnded - this.started) / 1000;
      this.panelTitle.textContent = `Thought for ${seconds.toFixed(1)} s`;
    }
  }

  finish(last: StreamEvent | null, exposure: string): void {
    if (this.thinkingEnded === null) this.endThinking();
    const usage = obj(last?.usage);
    const reasoningTokens = num(obj(usage?.completion_tokens_details)?.reasoning_tokens);
    const completion = num(usage?.completion_tokens);
    if (exposure === 'hidden') {
      // Nothing of the reasoning reached the page: say so, with the count only.
      this.panel.hidden = false;
      this.panel.open = false;
      this.panel.classList.add('withheld');
      clear(this.thinkingText);
      this.panelTitle.textContent =
        reasoningTokens ? `Reasoning hidden by the exposure policy (${reasoningTokens} tokens)` : 'Reasoning hidden by the exposure policy';
    } else if (reasoningTokens && this.reasoningChars > 0 && exposure === 'full') {
      this.panelTitle.textContent += ` · ${reasoningTokens} tokens`;
    }
    const thinking = obj(obj(last?.glassbox)?.thinking);
    const parts: (string | Node)[] = [];
    if (this.traceId)
      parts.push(h('a', { href: traceHref(this.traceId), 'data-link': true, 'data-role': 'trace-link' }, 'Open trace'), ' · ');
    if (completion !== null) parts.push(`${completion} tokens`);
    if (reasoningTokens !== null) parts.push(` (${reasoningTokens} thinking)`);
    if (thinking?.forced_closed) parts.push(' · thinking closed at the budget');
    if (thinking?.unclosed) parts.push(' · thinking never closed');
    this.meta.append(...parts);
    if (!this.content) this.answer.append(h('span', { class: 'note' }, '(no answer)'));
  }

  fail(message: string): void {
    if (this.thinkingEnded === null) this.endThinking();
    this.el.append(errorBox(message));
  }
}

// DeepConf token confidence has no fixed upper bound; 0 is a flat
// distribution. For bars, a confidence of 10 or more fills the bar.
export function confidenceFraction(c: number): number {
  return Math.max(0, Math.min(1, c / 10));
}

export function chatView(root: HTMLElement): () => void {
  const log = h('div', { class: 'chat-log', 'aria-live': 'polite' });
  const input = h('textarea', {
    rows: 3,
    placeholder: 'Ask something… (Enter sends, Shift+Enter for a new line)',
    'data-control': 'prompt',
  });
  const send = h('button', { type: 'submit', class: 'primary', 'data-control': 'send' }, 'Send');
  const stop = h('button', { type: 'button', class: 'secondary' }, 'Stop');
  const reset = h('button', { type: 'button', class: 'secondary' }, 'New chat');
  stop.hidden = true;
  const form = h('form', { class: 'composer' }, input, h('div', { class: 'composer-buttons' }, send, stop, reset));

  const intro = h(
    'div',
    { class: 'intro' },
    h('h1', null, 'Chat'),
    h(
      'p',
      null,
      'The thinking streams into its own panel; each answer links to its trace, where the reasoning can be seen as confidence over time, steps and a decision point.',
    ),
  );
  root.append(h('section', { class: 'view chat-view' }, intro, settingsPanel(), log, form));
  for (const t of turns) log.append(t.el);

  const setBusy = (busy: boolean) => {
    send.disabled = busy;
    stop.hidden = !busy;
    reset.disabled = busy;
  };
  setBusy(running !== null);
  showBusy = setBusy;

  async function ask(text: string): Promise<void> {
    const user: Turn = { role: 'user', content: text, el: userMessage(text), send: true };
    const msg = new AssistantMessage();
    const reply: Turn = { role: 'assistant', content: '', el: msg.el, send: false };
    const history = [...turns, user].filter((t) => t.send).map((t) => ({ role: t.role, content: t.content }));
    turns.push(user, reply);
    log.append(user.el, reply.el);
    msg.el.scrollIntoView({ block: 'end' });
    running = new AbortController();
    showBusy?.(true);
    let last: StreamEvent | null = null;
    let exposure = 'full';
    try {
      await streamChat(
        requestBody(history),
        (e) => {
          if (typeof e.trace_id === 'string') msg.traceId = e.trace_id;
          const gb = obj(e.glassbox);
          if (gb && typeof gb.exposure === 'string') exposure = gb.exposure;
          if (gb || obj(e.usage)) last = e;
          for (const choice of arr(e.choices)) {
            const delta = obj(obj(choice)?.delta);
            if (!delta) continue;
            if (typeof delta.reasoning_content === 'string') msg.reasoning(delta.reasoning_content);
            if (delta.reasoning_summary !== undefined) msg.summary(delta.reasoning_summary);
            if (typeof delta.content === 'string') msg.answerText(delta.content);
          }
        },
        running.signal,
      );
      msg.finish(last, exposure);
      reply.content = msg.content;
      reply.send = true;
    } catch (err) {
      const aborted = err instanceof DOMException && err.name === 'AbortError';
      msg.fail(aborted ? 'Stopped.' : err instanceof Error ? err.message : String(err));
      // A failed exchange stays on screen but is not sent again.
      user.send = false;
    } finally {
      running = null;
      showBusy?.(false);
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || running) return;
    input.value = '';
    void ask(text);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  stop.addEventListener('click', () => running?.abort());
  reset.addEventListener('click', () => {
    turns.length = 0;
    clear(log);
  });
  input.focus();
  return () => {
    if (showBusy === setBusy) showBusy = null;
  };
}
