// Draws the benchmark's p50 and p99 latency against the arrival rate, one line per scenario,
// as a self-contained SVG (docs/images/bench-latency.svg).

export interface PlotPoint {
  rate: number;
  p50: number;
  p99: number;
}

const COLORS = ['#6b7280', '#d97706', '#2563eb', '#059669'];
const [WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM] = [760, 420, 70, 20, 30, 150];

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Latency in ms on a log scale; an unfinished order (Infinity) is drawn at the top edge. */
export function latencySvg(series: { name: string; points: PlotPoint[] }[], title: string): string {
  const rates = series.flatMap((s) => s.points.map((p) => p.rate));
  const finite = series.flatMap((s) => s.points.flatMap((p) => [p.p50, p.p99])).filter(Number.isFinite);
  const [minRate, maxRate] = [Math.min(...rates), Math.max(...rates)];
  const [minMs, maxMs] = [Math.max(1, Math.min(...finite) / 2), Math.max(...finite) * 2];
  const plotW = WIDTH - LEFT - RIGHT;
  const plotH = HEIGHT - TOP - BOTTOM;
  const x = (rate: number) =>
    LEFT + (maxRate === minRate ? plotW / 2 : ((rate - minRate) / (maxRate - minRate)) * plotW);
  const y = (ms: number) =>
    Number.isFinite(ms) ? TOP + plotH - (Math.log10(ms / minMs) / Math.log10(maxMs / minMs)) * plotH : TOP;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${LEFT}" y="18" font-size="14" font-weight="bold">${escape(title)}</text>`,
    `<line x1="${LEFT}" y1="${TOP + plotH}" x2="${LEFT + plotW}" y2="${TOP + plotH}" stroke="black"/>`,
    `<line x1="${LEFT}" y1="${TOP}" x2="${LEFT}" y2="${TOP + plotH}" stroke="black"/>`,
  ];
  for (let ms = 10 ** Math.floor(Math.log10(minMs)); ms <= maxMs; ms *= 10) {
    if (ms < minMs) continue;
    const label = ms >= 1_000 ? `${ms / 1_000} s` : `${ms} ms`;
    parts.push(
      `<line x1="${LEFT}" y1="${y(ms)}" x2="${LEFT + plotW}" y2="${y(ms)}" stroke="#e5e7eb"/>`,
      `<text x="${LEFT - 6}" y="${y(ms) + 4}" text-anchor="end">${label}</text>`,
    );
  }
  for (const rate of [...new Set(rates)])
    parts.push(`<text x="${x(rate)}" y="${TOP + plotH + 16}" text-anchor="middle">${rate}</text>`);
  parts.push(
    `<text x="${LEFT + plotW / 2}" y="${TOP + plotH + 34}" text-anchor="middle">arrival rate (orders per minute); solid p50, dashed p99, top edge = unfinished</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    for (const [key, dash] of [
      ['p50', ''],
      ['p99', ' stroke-dasharray="5,4"'],
    ] as const) {
      const path = s.points.map((p) => `${x(p.rate).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${path}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
    }
    const legendY = TOP + plotH + 56 + i * 18;
    parts.push(
      `<line x1="${LEFT}" y1="${legendY - 4}" x2="${LEFT + 24}" y2="${legendY - 4}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${LEFT + 32}" y="${legendY}">${escape(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
