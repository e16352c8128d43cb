import { spawn } from 'node:child_process'
import { track } from './procs.js'

// A request as curl sends it, the way most command-line and native clients stream a file: `-T` reads the
// file as it sends (`--data-binary @file` loads it whole into memory first). `Expect:` is cleared so no
// scenario pays the 100-continue round trip.

export interface CurlReply {
  status: number
  headers: Record<string, string>
  body: string
}

/** Sends the whole `file` as the body of a PATCH (tus headers, offset 0) to `url`. */
export function curlPatch(url: string, file: string, { dataBinary = false } = {}): Promise<CurlReply> {
  const args = [
    '-sS',
    '-X',
    'PATCH',
    '-H',
    'Tus-Resumable: 1.0.0',
    '-H',
    'Upload-Offset: 0',
    '-H',
    'Content-Type: application/offset+octet-stream',
    '-H',
    'Expect:',
  ]
  args.push(...(dataBinary ? ['--data-binary', `@${file}`] : ['-T', file]), '-D', '-', url)
  return new Promise((resolve, reject) => {
    const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    track(child)
    let out = ''
    let err = ''
    child.stdout.setEncoding('latin1').on('data', (c: string) => (out += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c))
    child.once('error', reject)
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`curl exited ${code}: ${err.trim()}`))
      // -D - writes every response head (a 100 Continue may come first), then the body.
      const parts = out.split('\r\n\r\n')
      const heads = parts.filter((p) => /^HTTP\/[\d.]+ \d{3}/.test(p))
      const last = heads.at(-1) ?? ''
      const headers: Record<string, string> = {}
      for (const line of last.split('\r\n').slice(1)) {
        const colon = line.indexOf(':')
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      resolve({ status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(last)?.[1] ?? 0), headers, body: parts.slice(parts.indexOf(last) + 1).join('\r\n\r\n') })
    })
  })
}
