/**
 * A small SVG bar chart of benchmark figures: panels of grouped bars (one bar per series in each
 * group), each with optional reference lines (goals). Plain SVG 1.1 with no scripts or external
 * resources, so any browser and GitHub's README view show it as is.
 */

export interface Series {
  name: string;
  color: string;
}

export interface Panel {
  title: string;
  unit: string;
  /** Group labels along the x axis (e.g. "256 MiB x1"). */
  groups: string[];
  /** values[series][group]; null where a series has no figure (drawn as "n/a"). */
  values: (number | null)[][];
  /** Horizontal reference lines, e.g. a goal. */
  lines?: { value: number; label: string }[];
}

const WIDTH = 900;
const PANEL_HEIGHT = 260;
const MARGIN = { left: 70, right: 20, top: 36, bottom: 40 };

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

/** A "nice" axis for values up to `max`: its top (1, 2, 2.5 or 5 times a power of ten) and how many intervals. */
export function niceAxis(max: number): { top: number; intervals: number } {
  if (!(max > 0)) return { top: 1, intervals: 5 };
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= max) return { top: step * power, intervals: step === 2 ? 4 : 5 };
  return { top: 10 * power, intervals: 5 };
}

function panel(p: Panel, series: Series[], top: number): string {
  const x0 = MARGIN.left;
  const y0 = top + MARGIN.top;
  const w = WIDTH - MARGIN.left - MARGIN.right;
  const h = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const all = [...p.values.flat().filter((v): v is number => v !== null && Number.isFinite(v)), ...(p.lines ?? []).map((l) => l.value)];
  const { top: max, intervals } = niceAxis(Math.max(0, ...all) * 1.08);
  const y = (v: number) => y0 + h - (v / max) * h;
  const out: string[] = [`<text x="${x0}" y="${top + 22}" class="title">${escape(p.title)} (${escape(p.unit)})</text>`];
  for (let i = 0; i <= intervals; i += 1) {
    const v = (max * i) / intervals;
    out.push(`<line x1="${x0}" x2="${x0 + w}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`, `<text x="${x0 - 6}" y="${y(v) + 4}" class="axis" text-anchor="end">${num(v)}</text>`);
  }
  const groupWidth = w / p.groups.length;
  const barWidth = Math.min(36, (groupWidth * 0.8) / series.length);
  p.groups.forEach((group, g) => {
    const start = x0 + g * groupWidth + (groupWidth - barWidth * series.length) / 2;
    series.forEach((s, i) => {
      const v = p.values[i]?.[g] ?? null;
      const bx = start + i * barWidth;
      if (v === null || !Number.isFinite(v)) {
        out.push(`<text x="${bx + barWidth / 2}" y="${y0 + h - 4}" class="na" text-anchor="middle">n/a</text>`);
        return;
      }
      out.push(
        `<rect x="${bx.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${(y0 + h - y(v)).toFixed(1)}" fill="${s.color}"><title>${escape(`${s.name}, ${group}: ${num(v)} ${p.unit}`)}</title></rect>`,
        `<text x="${(bx + barWidth / 2 - 1).toFixed(1)}" y="${(y(v) - 3).toFixed(1)}" class="value" text-anchor="middle">${num(v)}</text>`,
      );
    });
    out.push(`<text x="${x0 + g * groupWidth + groupWidth / 2}" y="${y0 + h + 18}" class="axis" text-anchor="middle">${escape(group)}</text>`);
  });
  for (const line of p.lines ?? []) {
    out.push(
      `<line x1="${x0}" x2="${x0 + w}" y1="${y(line.value)}" y2="${y(line.value)}" class="goal"/>`,
      `<text x="${x0 + w - 4}" y="${y(line.value) - 4}" class="goal-label" text-anchor="end">${escape(line.label)}</text>`,
    );
  }
  return out.join('\n');
}

/** The whole chart: a title, a subtitle (machine, date), a legend and the panels stacked. */
export function barChartSvg(opts: { title: string; subtitle: string; series: Series[]; panels: Panel[] }): string {
  const header = 70;
  const height = header + opts.panels.length * PANEL_HEIGHT;
  const legend = opts.series
    .map((s, i) => {
      const x = MARGIN.left + i * 165;
      return `<rect x="${x}" y="52" width="12" height="12" fill="${s.color}"/><text x="${x + 16}" y="62" class="legend">${escape(s.name)}</text>`;
    })
    .join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    '<style>.title{font-size:14px;font-weight:bold}.subtitle{font-size:11px;fill:#555}.axis{font-size:11px;fill:#333}.value{font-size:9px;fill:#222}' +
      '.na{font-size:9px;fill:#999}.legend{font-size:11px}.grid{stroke:#ddd;stroke-width:1}.goal{stroke:#c00;stroke-width:1.5;stroke-dasharray:6 4}.goal-label{font-size:10px;fill:#c00}</style>',
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="${MARGIN.left}" y="22" class="title">${escape(opts.title)}</text>`,
    `<text x="${MARGIN.left}" y="40" class="subtitle">${escape(opts.subtitle)}</text>`,
    legend,
    ...opts.panels.map((p, i) => panel(p, opts.series, header + i * PANEL_HEIGHT)),
    '</svg>',
    '',
  ].join('\n');
}
