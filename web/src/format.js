// Number, size and time formatting for the dashboard.

export function percent(ratio) {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return '–';
  return `${Math.round(ratio * 100)}%`;
}

export function gb(value) {
  if (value === null || value === undefined) return '–';
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

export function celsius(value) {
  return value === null || value === undefined ? '– °C' : `${Math.round(value)} °C`;
}

export function watts(value, limit) {
  if (value === null || value === undefined) return '– W';
  return limit ? `${Math.round(value)} / ${Math.round(limit)} W` : `${Math.round(value)} W`;
}

// 75 -> "1m 15s", 7500 -> "2h 5m", 180000 -> "2d 2h".
export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function parseTime(iso) {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}

// Background colour for a 0..1 load: pale green, through amber, to red.
// Returns [css colour, whether text on it should be light].
const STOPS = [
  [0.0, [232, 245, 233]],
  [0.3, [165, 214, 167]],
  [0.6, [255, 213, 79]],
  [0.85, [251, 140, 0]],
  [1.0, [211, 47, 47]],
];
export function heat(ratio) {
  const x = Math.min(1, Math.max(0, ratio ?? 0));
  let i = 1;
  while (i < STOPS.length - 1 && x > STOPS[i][0]) i++;
  const [x0, c0] = STOPS[i - 1];
  const [x1, c1] = STOPS[i];
  const t = x1 === x0 ? 0 : (x - x0) / (x1 - x0);
  const rgb = c0.map((v, k) => Math.round(v + (c1[k] - v) * t));
  const luminance = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255;
  return [`rgb(${rgb.join(',')})`, luminance < 0.55];
}
