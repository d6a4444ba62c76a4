// Draws the Grafana dashboard's panels from a real Prometheus's data, as one self-contained SVG:
// where no Grafana runs (no Docker engine here), docs/operations.md still shows what the panels show.
// Each panel is a small line chart of its queries over the run, one line per series.

export interface PanelData {
  title: string;
  /** One line per series: its legend and [unix seconds, value] points (NaN values are gaps). */
  series: { name: string; points: [number, number][] }[];
}

const COLORS = ['#2563eb', '#d97706', '#059669', '#dc2626', '#7c3aed', '#6b7280'];
const [PANEL_W, PANEL_H, GAP, COLUMNS] = [440, 210, 16, 2];
const [LEFT, RIGHT, TOP, BOTTOM] = [52, 12, 28, 46];

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function formatValue(value: number): string {
  if (value === 0) return '0';
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 1) return value.toFixed(1);
  return value.toPrecision(2);
}

function panelSvg(panel: PanelData, originX: number, originY: number): string {
  const points = panel.series.flatMap((s) => s.points).filter(([, v]) => Number.isFinite(v));
  const parts = [
    `<rect x="${originX}" y="${originY}" width="${PANEL_W}" height="${PANEL_H}" fill="#f9fafb" stroke="#d1d5db"/>`,
    `<text x="${originX + 10}" y="${originY + 18}" font-weight="bold">${escape(panel.title)}</text>`,
  ];
  if (points.length === 0) {
    parts.push(`<text x="${originX + PANEL_W / 2}" y="${originY + PANEL_H / 2}" text-anchor="middle">no data</text>`);
    return parts.join('');
  }
  const [t0, t1] = [Math.min(...points.map(([t]) => t)), Math.max(...points.map(([t]) => t))];
  const maxV = Math.max(...points.map(([, v]) => v), 0) || 1;
  const [plotW, plotH] = [PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM];
  const x = (t: number) => originX + LEFT + (t1 === t0 ? plotW / 2 : ((t - t0) / (t1 - t0)) * plotW);
  const y = (v: number) => originY + TOP + plotH - (v / maxV) * plotH;
  parts.push(
    `<line x1="${originX + LEFT}" y1="${y(0)}" x2="${originX + LEFT + plotW}" y2="${y(0)}" stroke="#9ca3af"/>`,
    `<text x="${originX + LEFT - 4}" y="${y(maxV) + 4}" text-anchor="end">${formatValue(maxV)}</text>`,
    `<text x="${originX + LEFT - 4}" y="${y(0) + 4}" text-anchor="end">0</text>`,
    `<text x="${originX + LEFT + plotW}" y="${y(0) + 14}" text-anchor="end">${Math.round(t1 - t0)} s</text>`,
  );
  panel.series.slice(0, COLORS.length).forEach((series, i) => {
    const color = COLORS[i]!;
    let path = '';
    let drawing = false;
    for (const [t, v] of series.points) {
      if (!Number.isFinite(v)) {
        drawing = false;
        continue;
      }
      path += `${drawing ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      drawing = true;
    }
    if (path) parts.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
    const legendX = originX + LEFT + (i % 3) * 130;
    const legendY = originY + PANEL_H - 24 + Math.floor(i / 3) * 13;
    parts.push(
      `<rect x="${legendX}" y="${legendY - 8}" width="10" height="3" fill="${color}"/>`,
      `<text x="${legendX + 14}" y="${legendY}" font-size="10">${escape(series.name.slice(0, 20))}</text>`,
    );
  });
  return parts.join('');
}

export function dashboardSvg(title: string, panels: PanelData[]): string {
  const rows = Math.ceil(panels.length / COLUMNS);
  const width = COLUMNS * PANEL_W + (COLUMNS + 1) * GAP;
  const height = rows * PANEL_H + (rows + 1) * GAP + 24;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${GAP}" y="20" font-size="14" font-weight="bold">${escape(title)}</text>`,
    ...panels.map((panel, i) =>
      panelSvg(panel, GAP + (i % COLUMNS) * (PANEL_W + GAP), 24 + GAP + Math.floor(i / COLUMNS) * (PANEL_H + GAP)),
    ),
    '</svg>\n',
  ].join('');
}
