// Text table and a hand-written SVG bar chart of a bench run.

export interface Row {
  id: string
  label: string
  group: string
  mbps: number
  minMbps: number
  maxMbps: number
  /** Server CPU seconds per GiB received. */
  cpuPerGiB?: number
  /** Written after the figures, e.g. "x tusd 0.61  x raw 0.80". */
  ratios?: string
}

export function table(headers: string[], rows: (string | number | undefined)[][], align: ('l' | 'r')[] = []): string {
  const cells = rows.map((r) => r.map((c) => (c === undefined ? '' : String(c))))
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)))
  const fmt = (r: string[]) => r.map((c, i) => (align[i] === 'l' ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  return [fmt(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(fmt)].join('\n')
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const COLORS: Record<string, string> = { raw: '#8c8c8c', bare: '#4f81bd', tusgate: '#2e9e5b', concurrent: '#e08a1e', tusd: '#8064a2', s3: '#c0504d' }

/** Horizontal bars: median MB/s per scenario, a whisker for the min..max over rounds, CPU per GiB and ratios written at the end. */
export function svgChart(rows: Row[], title: string, subtitle: string[]): string {
  const labelW = 360
  const barW = 420
  const rightW = 340
  const rowH = 30
  const top = 56 + subtitle.length * 16
  const width = labelW + barW + rightW
  const height = top + rows.length * rowH + 40
  const max = Math.max(1, ...rows.map((r) => (Number.isFinite(r.maxMbps) ? r.maxMbps : r.mbps)).filter(Number.isFinite))
  const step = niceStep(max / 5)
  const axisMax = Math.ceil(max / step) * step
  const x = (v: number) => labelW + (barW * v) / axisMax
  const out: string[] = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  )
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="12" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`)
  for (const [i, line] of subtitle.entries()) out.push(`<text x="12" y="${40 + i * 16}" fill="#555">${esc(line)}</text>`)
  for (let v = 0; v <= axisMax + 1e-9; v += step) {
    out.push(`<line x1="${x(v)}" y1="${top - 6}" x2="${x(v)}" y2="${top + rows.length * rowH}" stroke="#e4e4e4"/>`)
    out.push(`<text x="${x(v)}" y="${top + rows.length * rowH + 16}" text-anchor="middle" fill="#555">${Math.round(v)}</text>`)
  }
  out.push(
    `<text x="${labelW + barW / 2}" y="${top + rows.length * rowH + 32}" text-anchor="middle" fill="#333">MB/s (10^6 bytes/s), median over rounds; whisker: min..max</text>`,
  )
  rows.forEach((r, i) => {
    const y = top + i * rowH
    const color = COLORS[r.group] ?? '#999'
    out.push(`<text x="${labelW - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${esc(r.label)}</text>`)
    if (Number.isFinite(r.mbps)) {
      out.push(`<rect x="${labelW}" y="${y + 5}" width="${Math.max(1, x(r.mbps) - labelW).toFixed(1)}" height="${rowH - 10}" fill="${color}"/>`)
      if (Number.isFinite(r.minMbps) && Number.isFinite(r.maxMbps) && r.maxMbps > r.minMbps) {
        const cy = y + rowH / 2
        out.push(`<line x1="${x(r.minMbps).toFixed(1)}" y1="${cy}" x2="${x(r.maxMbps).toFixed(1)}" y2="${cy}" stroke="#222"/>`)
        for (const v of [r.minMbps, r.maxMbps]) out.push(`<line x1="${x(v).toFixed(1)}" y1="${cy - 5}" x2="${x(v).toFixed(1)}" y2="${cy + 5}" stroke="#222"/>`)
      }
      const cpu = r.cpuPerGiB !== undefined && Number.isFinite(r.cpuPerGiB) ? `  ${r.cpuPerGiB.toFixed(1)} CPU-s/GiB` : ''
      out.push(`<text x="${labelW + barW + 8}" y="${y + rowH / 2 + 4}">${esc(`${r.mbps.toFixed(0)} MB/s${cpu}${r.ratios ? `  ${r.ratios}` : ''}`)}</text>`)
    } else {
      out.push(`<text x="${labelW + 6}" y="${y + rowH / 2 + 4}" fill="#b00">failed</text>`)
    }
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}

function niceStep(raw: number): number {
  const pow = 10 ** Math.floor(Math.log10(raw))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * pow >= raw) return m * pow
  return 10 * pow
}
