import { spawn } from 'node:child_process'
import { track } from './procs.js'

// A PATCH as curl sends it, the way most command-line and native clients stream a file: `-T` reads the
// file as it sends (`--data-binary @file` loads it whole into memory first). `Expect:` is cleared so no
// scenario pays the 100-continue round trip.

export interface CurlReply {
  status: number
  offset: number | undefined
  ms: number
}

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
    ...(dataBinary ? ['--data-binary', `@${file}`] : ['-T', file]),
    '-o',
    '/dev/null',
    '-D',
    '-',
    url,
  ]
  const started = process.hrtime.bigint()
  return new Promise((resolve, reject) => {
    const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    track(child)
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c))
    child.once('error', reject)
    child.once('exit', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6
      if (code !== 0) return reject(new Error(`curl exited ${code}: ${err.trim()}`))
      // The last status line counts (a 100 Continue may precede it).
      const statuses = [...out.matchAll(/^HTTP\/[\d.]+ (\d{3})/gm)]
      const offset = /^upload-offset:\s*(\d+)/im.exec(out)
      resolve({ status: Number(statuses.at(-1)?.[1] ?? 0), offset: offset ? Number(offset[1]) : undefined, ms })
    })
  })
}
