// The two charts of the trace view, drawn by uPlot: confidence over the
// generated tokens, and the early-answer curve with the decision marked.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

import { h } from './dom';
import type { Curve, Token } from './report';

const COLORS = {
  confidence: '#7aa2f7',
  rolling: '#e0af68',
  answer: '#9ece6a',
  probability: '#bb9af7',
  threshold: '#f7768e',
  decided: '#f7768e',
  grid: 'rgba(255,255,255,0.07)',
  axis: '#a9b1d6',
};

function axis(label: string, extra: Partial<uPlot.Axis> = {}): uPlot.Axis {
  return {
    label,
    stroke: COLORS.axis,
    grid: { stroke: COLORS.grid, width: 1 },
    ticks: { stroke: COLORS.grid, width: 1 },
    labelFont: '12px system-ui, sans-serif',
    font: '11px system-ui, sans-serif',
    ...extra,
  };
}

// Sizes the chart to its container and follows it when the page is resized.
function mount(container: HTMLElement, opts: Omit<uPlot.Options, 'width' | 'height'>, data: uPlot.AlignedData): uPlot {
  const width = () => Math.max(280, container.clientWidth || 600);
  const plot = new uPlot({ ...opts, width: width(), height: 240 } as uPlot.Options, data, container);
  if (typeof ResizeObserver !== 'undefined') {
    let last = width();
    new ResizeObserver(() => {
      const w = width();
      if (w !== last) {
        last = w;
        plot.setSize({ width: w, height: 240 });
      }
    }).observe(container);
  }
  return plot;
}

// Token confidence (DeepConf: higher is more certain) over the generated
// tokens, with a sliding-window mean (DeepConf's group confidence).
export function confidenceChart(tokens: Token[], window = 16, markTokenAt: number | null = null): HTMLElement {
  const container = h('div', { class: 'chart', 'data-chart': 'confidence' });
  const xs: number[] = [];
  const thinking: (number | null)[] = [];
  const answer: (number | null)[] = [];
  const rolling: (number | null)[] = [];
  const marker: (number | null)[] = [];
  const recent: number[] = [];
  let sum = 0;
  for (const t of tokens) {
    xs.push(t.index);
    const c = t.confidence;
    const inThinking = t.phase === 'thinking';
    thinking.push(inThinking ? c : null);
    answer.push(!inThinking && t.phase !== 'open_marker' && t.phase !== 'close_marker' ? c : null);
    if (c !== null) {
      recent.push(c);
      sum += c;
      if (recent.length > window) sum -= recent.shift()!;
    }
    rolling.push(recent.length ? sum / recent.length : null);
    marker.push(null);
  }
  if (markTokenAt !== null && markTokenAt >= 0 && markTokenAt < xs.length) marker[markTokenAt] = rolling[markTokenAt];
  // Only the series that have data (a hidden key's trace has no thinking).
  const series: uPlot.Series[] = [{ label: 'token' }];
  const data: (number | null)[][] = [xs];
  const add = (values: (number | null)[], s: uPlot.Series) => {
    if (!values.some((v) => v !== null)) return;
    series.push(s);
    data.push(values);
  };
  add(thinking, { label: 'thinking', stroke: COLORS.confidence, width: 1, points: { show: false }, spanGaps: false });
  add(answer, { label: 'answer', stroke: COLORS.answer, width: 1.5, points: { show: false }, spanGaps: false });
  add(rolling, { label: `mean of ${window}`, stroke: COLORS.rolling, width: 2, points: { show: false } });
  add(marker, {
    label: 'decision',
    stroke: COLORS.decided,
    width: 0,
    points: { show: true, size: 12, fill: COLORS.decided, stroke: COLORS.decided },
  });
  requestAnimationFrame(() =>
    mount(
      container,
      {
        cursor: { drag: { x: true, y: false } },
        scales: { x: { time: false } },
        axes: [axis('token', { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }), axis('confidence')],
        series,
      },
      data as uPlot.AlignedData,
    ),
  );
  return container;
}

// P(final answer) when the thinking is cut after each step (Lanham et al.),
// the decision threshold, and the step from which the answer stays decided.
export function earlyAnswerChart(curve: Curve): HTMLElement {
  const container = h('div', { class: 'chart', 'data-chart': 'early-answer' });
  const xs = curve.points.map((p) => p.afterStep);
  const ys = curve.points.map((p) => p.probability);
  const threshold = curve.points.map(() => curve.threshold);
  const decided = curve.points.map((p) => (curve.decidedStep !== null && p.afterStep === curve.decidedStep ? p.probability : null));
  const series: uPlot.Series[] = [
    { label: 'after step', value: (_u, v) => (v === null ? '–' : v < 0 ? 'none' : String(v)) },
    { label: 'P(answer)', stroke: COLORS.probability, width: 2, points: { show: true, size: 6 } },
  ];
  const data: (number | null)[][] = [xs, ys];
  if (curve.threshold !== null) {
    series.push({ label: 'threshold', stroke: COLORS.threshold, width: 1, dash: [6, 4], points: { show: false } });
    data.push(threshold);
  }
  if (decided.some((v) => v !== null)) {
    series.push({
      label: 'decided',
      stroke: COLORS.decided,
      width: 0,
      points: { show: true, size: 14, fill: COLORS.decided, stroke: '#fff', width: 2 },
    });
    data.push(decided);
  }
  requestAnimationFrame(() =>
    mount(
      container,
      {
        scales: { x: { time: false }, y: { range: [0, 1] } },
        axes: [
          // Whole steps only; -1 is the cut before the first step.
          axis('thinking cut after step', {
            incrs: [1, 2, 5, 10, 20, 50, 100],
            values: (_u, ticks) => ticks.map((v) => (v < 0 ? 'start' : String(v))),
          }),
          axis('P(answer)'),
        ],
        series,
      },
      data as uPlot.AlignedData,
    ),
  );
  return container;
}
