import { h, s } from './dom.js';
import { money, shortDay } from './format.js';

const COLORS = ['#2f6fde', '#e0803a', '#2a9d6f', '#b84fc4', '#d64550', '#7a8a2e', '#3aa3b8', '#8a6a3e'];

/** A model's color, the same in the chart and its legend. */
export function colorOf(models: string[], model: string): string {
  return COLORS[Math.max(0, models.indexOf(model)) % COLORS.length] ?? '#888';
}

export interface DaySeries {
  days: string[];
  models: string[];
  /** cost in nano-USD per day and model */
  cost: Map<string, Map<string, bigint>>;
}

/** Daily spend stacked by model, as SVG that scales with its box. */
export function stackedBars(data: DaySeries, label: string): HTMLElement {
  // As wide as the screen allows, so its labels stay readable on a phone.
  const W = Math.min(760, Math.max(320, window.innerWidth - 64));
  const H = W < 500 ? 200 : 240;
  const pad = { l: 96, r: 8, t: 10, b: 28 };
  const totals = data.days.map((d) => [...(data.cost.get(d)?.values() ?? [])].reduce((a, b) => a + b, 0n));
  // biome-ignore lint/complexity/useMathMinMax: bigints, which Math.max does not take
  const max = totals.reduce((a, b) => (b > a ? b : a), 0n);
  // Scale in whole nano-USD, so a bar's height is exact up to the pixel.
  const y = (nano: bigint) => (max === 0n ? 0 : Number((nano * BigInt(H - pad.t - pad.b) * 1000n) / max) / 1000);
  const slot = (W - pad.l - pad.r) / Math.max(1, data.days.length);
  const bars = data.days.map((day, i) => {
    let top = H - pad.b;
    const x = pad.l + i * slot + slot * 0.15;
    const parts = data.models.map((m) => {
      const v = data.cost.get(day)?.get(m) ?? 0n;
      if (v === 0n) return null;
      const hgt = Math.max(1, y(v));
      top -= hgt;
      return s(
        'rect',
        { x: x.toFixed(1), y: top.toFixed(1), width: (slot * 0.7).toFixed(1), height: hgt.toFixed(1), fill: colorOf(data.models, m) },
        s('title', {}, `${shortDay(day)} · ${m}: ${money(v)}`),
      );
    });
    const step = Math.ceil(data.days.length / Math.max(2, Math.floor(W / 90)));
    // Counted from the newest day, which always has its label.
    const tick =
      (data.days.length - 1 - i) % step === 0
        ? // The newest day's label ends at the chart's edge instead of running past it.
          s(
            'text',
            i === data.days.length - 1 ? { x: W - pad.r, y: H - 8, 'text-anchor': 'end', class: 'tick' } : { x: (x + slot * 0.35).toFixed(1), y: H - 8, 'text-anchor': 'middle', class: 'tick' },
            shortDay(day),
          )
        : null;
    return s('g', { 'data-day': day, 'data-total-nano': totals[i]?.toString() ?? '0' }, ...parts, tick);
  });
  const axis = [0n, max / 2n, max].map((v) =>
    s(
      'g',
      {},
      s('line', { x1: pad.l, x2: W - pad.r, y1: (H - pad.b - y(v)).toFixed(1), y2: (H - pad.b - y(v)).toFixed(1), class: 'grid' }),
      s('text', { x: pad.l - 6, y: (H - pad.b - y(v) + 4).toFixed(1), 'text-anchor': 'end', class: 'tick' }, money(v)),
    ),
  );
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'chart' }, ...axis, ...bars);
  const legend = h(
    'ul',
    { class: 'legend' },
    data.models.map((m) => h('li', null, h('span', { class: 'swatch', style: { background: colorOf(data.models, m) } }), m)),
  );
  return h('div', { class: 'chart-box' }, svg, legend);
}
