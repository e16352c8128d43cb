import { readdirSync, statSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { type CephCluster, startCeph } from '../../scripts/ceph.js'
import { cpuSeconds } from './procs.js'

// What the S3 scenarios need besides the bench's own measurements: a Ceph of their own, the CPU of its
// daemons, tusgate's S3 request counters, and the bytes of the temporary part files tusgate holds.

/** A single-node Ceph (mon, OSD on memstore, radosgw) for the bench, with RAM for the uploads in flight. */
export const startBenchCeph = (memstoreBytes: number): Promise<CephCluster> => startCeph({ memstoreBytes, startTimeoutMs: 120_000 })

/** CPU seconds used so far by radosgw, and by the OSD and the monitor together. */
export function cephCpuSeconds(ceph: CephCluster): { rgw: number; rados: number } {
  const of = (pid: number) => cpuSeconds(pid) || 0
  return { rgw: of(ceph.pids.rgw), rados: of(ceph.pids.osd) + of(ceph.pids.mon) }
}

export interface S3RequestCounts {
  uploadParts: number
  /** Seconds the UploadParts took, summed (several run at once). */
  uploadPartSeconds: number
  requests: number
  /** Failed requests but 404s (the store's way of asking whether an object exists). */
  errors: number
}

/** tusgate's S3 request counters from its /metrics. */
export async function s3RequestCounts(serverUrl: string): Promise<S3RequestCounts> {
  const text = await new Promise<string>((resolve, reject) => {
    http
      .get(`${serverUrl}/metrics`, { agent: false }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c))
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`/metrics: ${res.statusCode}`))))
      })
      .on('error', reject)
  })
  const total = (name: string, labels = '') =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) && l.includes(labels))
      .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)
  return {
    uploadParts: total('tusgate_s3_requests_total', 'operation="UploadPart"'),
    uploadPartSeconds: total('tusgate_s3_request_duration_seconds_sum', 'operation="UploadPart"'),
    requests: total('tusgate_s3_requests_total'),
    errors: total('tusgate_s3_request_errors_total') - total('tusgate_s3_request_errors_total', 'status="404"'),
  }
}

/** Samples the bytes of the files in `dir` (tusgate's TMPDIR: the parts it spools) every `everyMs`; the peak. */
export class DirBytesSampler {
  private peak = 0
  private readonly timer: NodeJS.Timeout
  constructor(dir: string, everyMs = 50) {
    const sample = () => {
      let bytes = 0
      for (const name of readdirSync(dir)) {
        try {
          bytes += statSync(path.join(dir, name)).size
        } catch {
          // removed meanwhile
        }
      }
      this.peak = Math.max(this.peak, bytes)
    }
    this.timer = setInterval(sample, everyMs)
  }
  stop(): number {
    clearInterval(this.timer)
    return this.peak
  }
}
