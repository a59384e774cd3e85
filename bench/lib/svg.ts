// Hand-written SVG charts for docs/benchmarks.md: grouped horizontal bars and a line chart.
// Every bar carries data-value, so a test can check that lengths are proportional.

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];
const FONT = 'font-family="sans-serif" font-size="12"';
const LEGEND_ROW = 18;

export interface Series {
  readonly name: string;
  /** One per category (or x); null where nothing was measured. */
  readonly values: readonly (number | null)[];
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const fixed = (n: number) => (Number.isFinite(n) ? Number(n.toFixed(1)) : 0);

function formatValue(n: number): string {
  if (n === 0) return '0';
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (n >= 100) return n.toFixed(0);
  return n.toFixed(n >= 10 ? 1 : 2);
}

/** 1, 2, 5 × 10^k at or above n: an axis end that reads well. */
export function niceMax(n: number): number {
  if (!(n > 0) || !Number.isFinite(n)) return 1;
  const power = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= n) return step * power;
  return 10 * power;
}

/** Legend entries left to right from x = 10, wrapping at the chart's width; its rows and their height. */
function legend(series: readonly Series[], width: number): { svg: string; height: number } {
  let x = 10;
  let y = 42;
  const items = series.map((s, i) => {
    // About 7 px per character at 12 px sans-serif: enough to keep entries apart.
    const advance = 16 + s.name.length * 7 + 24;
    if (x > 10 && x + advance > width - 10) {
      x = 10;
      y += LEGEND_ROW;
    }
    const item = `<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/><text x="${x + 16}" y="${y}" ${FONT}>${xml(s.name)}</text>`;
    x += advance;
    return item;
  });
  return { svg: items.join('\n'), height: y - 42 + LEGEND_ROW };
}

/** The opening tag, a white background, the title and the legend. */
function frame(width: number, height: number, title: string, legendSvg: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-family="sans-serif" font-size="15" font-weight="bold">${xml(title)}</text>`,
    legendSvg,
  ];
}

const finite = (v: number | null): v is number => v !== null && Number.isFinite(v);

/** Horizontal grouped bars: one group per category, one bar per series. */
export function barChart(options: {
  readonly title: string;
  readonly unit: string;
  readonly categories: readonly string[];
  readonly series: readonly Series[];
}): string {
  const { title, unit, categories, series } = options;
  const width = 760;
  const labelWidth = 230;
  const plotWidth = width - labelWidth - 90;
  const bar = 14;
  const group = series.length * bar + 12;
  const key = legend(series, width);
  const top = 40 + key.height;
  const height = top + categories.length * group + 34;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter(finite))));
  const scale = plotWidth / max;
  const parts = frame(width, height, title, key.svg);
  for (let t = 0; t <= 4; t++) {
    const x = fixed(labelWidth + (plotWidth * t) / 4);
    parts.push(
      `<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${height - 28}" stroke="#dddddd"/>`,
      `<text x="${x}" y="${height - 12}" ${FONT} text-anchor="middle">${xml(formatValue((max * t) / 4))}</text>`,
    );
  }
  parts.push(`<text x="${width - 10}" y="${height - 12}" ${FONT} text-anchor="end">${xml(unit)}</text>`);
  categories.forEach((category, c) => {
    const y0 = top + c * group;
    parts.push(
      `<text x="${labelWidth - 8}" y="${fixed(y0 + (series.length * bar) / 2 + 4)}" ${FONT} text-anchor="end">${xml(category)}</text>`,
    );
    series.forEach((s, i) => {
      const value = s.values[c] ?? null;
      const y = y0 + i * bar;
      if (!finite(value)) {
        parts.push(
          `<text x="${labelWidth + 4}" y="${y + bar - 3}" ${FONT} fill="#888888">not measured</text>`,
        );
        return;
      }
      const w = fixed(Math.max(0, value) * scale);
      parts.push(
        `<rect class="bar" data-value="${value}" x="${labelWidth}" y="${y}" width="${w}" height="${bar - 2}" fill="${COLORS[i % COLORS.length]}"/>`,
        `<text x="${fixed(labelWidth + w + 4)}" y="${y + bar - 3}" ${FONT}>${xml(formatValue(value))}</text>`,
      );
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** A line per series over categorical x positions (equally spaced), y from 0. */
export function lineChart(options: {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly x: readonly (number | string)[];
  readonly series: readonly Series[];
}): string {
  const { title, xLabel, yLabel, x, series } = options;
  const width = 760;
  const key = legend(series, width);
  const top = 40 + key.height;
  const height = 322 + top;
  const left = 70;
  const right = 20;
  const bottom = 50;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter(finite))));
  const px = (i: number) => fixed(left + (x.length === 1 ? plotWidth / 2 : (plotWidth * i) / (x.length - 1)));
  const py = (v: number) => fixed(top + plotHeight - (Math.max(0, v) / max) * plotHeight);
  const parts = frame(width, height, title, key.svg);
  for (let t = 0; t <= 4; t++) {
    const y = py((max * t) / 4);
    parts.push(
      `<line x1="${left}" y1="${y}" x2="${width - right}" y2="${y}" stroke="#dddddd"/>`,
      `<text x="${left - 6}" y="${fixed(y + 4)}" ${FONT} text-anchor="end">${xml(formatValue((max * t) / 4))}</text>`,
    );
  }
  x.forEach((label, i) => {
    parts.push(
      `<text x="${px(i)}" y="${height - bottom + 18}" ${FONT} text-anchor="middle">${xml(String(label))}</text>`,
    );
  });
  parts.push(
    `<text x="${fixed(left + plotWidth / 2)}" y="${height - 10}" ${FONT} text-anchor="middle">${xml(xLabel)}</text>`,
    `<text x="14" y="${fixed(top + plotHeight / 2)}" ${FONT} text-anchor="middle" transform="rotate(-90 14 ${fixed(top + plotHeight / 2)})">${xml(yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const points = s.values.flatMap((v, j) => (finite(v) ? [`${px(j)},${py(v)}`] : []));
    if (points.length > 1)
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.join(' ')}"/>`);
    s.values.forEach((v, j) => {
      if (finite(v))
        parts.push(
          `<circle class="point" data-value="${v}" cx="${px(j)}" cy="${py(v)}" r="3" fill="${color}"/>`,
        );
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
