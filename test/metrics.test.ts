import { setTimeout as sleep } from 'node:timers/promises'
import { createUpload, pacedPatch, patch, randomData, request, TUS } from './helpers/http.js'
import { type InProcessServer, startServer, useServer } from './helpers/servers.js'

/** The value of one sample in Prometheus text, e.g. value(text, 'tusgate_uploads_created_total'). */
function value(text: string, sample: string): number {
  const escaped = sample.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text)
  if (!match) throw new Error(`no sample ${sample} in:\n${text.slice(0, 2000)}`)
  return Number(match[1])
}

const scrape = async (server: InProcessServer) => (await request(`${server.url}/metrics`)).body.toString()

describe('/metrics', () => {
  const server = useServer({ UPLOAD_EXPIRES_AFTER: '1s', EXPIRY_SWEEP_INTERVAL: '1h', LOCK_TIMEOUT: '300ms', LOCK_DRAIN_TIMEOUT: '5s' })

  test('serves Prometheus text with process metrics under the tusgate_ prefix', async () => {
    const res = await request(`${server.url}/metrics`)
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = res.body.toString()
    expect(value(text, 'tusgate_process_resident_memory_bytes')).toBeGreaterThan(10_000_000)
    expect(value(text, 'tusgate_open_connections')).toBeGreaterThanOrEqual(1)
    expect(value(text, 'tusgate_uploads_in_progress')).toBe(0)
    // Every cause of a fault is there from the start (test/faults.test.ts counts them under real faults).
    for (const cause of ['no-space', 'unavailable', 'busy', 'internal']) expect(value(text, `tusgate_upload_errors_total{cause="${cause}"}`)).toBe(0)
  })

  test('counts uploads, bytes, requests, store operations and lock waits', async () => {
    const before = await scrape(server)
    const url = await createUpload(server.url, { 'Upload-Length': 1000 })
    expect((await patch(url, 0, randomData(1000))).status).toBe(204)
    const other = await createUpload(server.url, { 'Upload-Length': 5 })
    expect((await request(other, { method: 'DELETE', headers: TUS })).status).toBe(204)
    const after = await scrape(server)
    const delta = (sample: string) => value(after, sample) - (before.includes(`${sample} `) ? value(before, sample) : 0)
    expect(delta('tusgate_uploads_created_total')).toBe(2)
    expect(delta('tusgate_uploads_finished_total')).toBe(1)
    expect(delta('tusgate_uploads_terminated_total')).toBe(1)
    expect(delta('tusgate_bytes_received_total')).toBe(1000)
    expect(delta('tusgate_http_requests_total{method="PATCH",status="204"}')).toBe(1)
    expect(delta('tusgate_http_requests_total{method="POST",status="201"}')).toBe(2)
    expect(delta('tusgate_store_operation_duration_seconds_count{operation="write",outcome="ok"}')).toBe(1)
    expect(delta('tusgate_store_operation_duration_seconds_count{operation="create",outcome="ok"}')).toBe(2)
    expect(delta('tusgate_lock_wait_seconds_count')).toBeGreaterThanOrEqual(3)
  })

  test('shows an upload in progress, and a lock wait that timed out', async () => {
    const url = await createUpload(server.url, { 'Upload-Length': 64 * 1024 })
    const slow = pacedPatch(url, 0, randomData(64 * 1024), { piece: 4096, delayMs: 100, holdMs: 0 })
    await sleep(300)
    expect(value(await scrape(server), 'tusgate_uploads_in_progress')).toBe(1)
    const timeoutsBefore = value(await scrape(server), 'tusgate_lock_timeouts_total')
    // The PATCH holds the lock and gets 5 s to let go; the HEAD waits only 300 ms.
    expect((await request(url, { method: 'HEAD', headers: TUS })).status).toBe(423)
    expect(value(await scrape(server), 'tusgate_lock_timeouts_total')).toBe(timeoutsBefore + 1)
    await slow
  })

  test('counts expired uploads', async () => {
    const before = value(await scrape(server), 'tusgate_uploads_expired_total')
    await createUpload(server.url, { 'Upload-Length': 10 })
    await sleep(1200)
    const removed = await server.app.sweeper.sweep()
    expect(removed.length).toBeGreaterThanOrEqual(1)
    expect(value(await scrape(server), 'tusgate_uploads_expired_total')).toBe(before + removed.length)
  })
})

describe('/metrics settings', () => {
  test('METRICS_TOKEN guards it; METRICS=false turns it off', async () => {
    const guarded = await startServer({ METRICS_TOKEN: 'a-long-enough-secret' })
    const off = await startServer({ METRICS: 'false' })
    try {
      expect((await request(`${guarded.url}/metrics`)).status).toBe(401)
      expect((await request(`${guarded.url}/metrics`, { headers: { Authorization: 'Bearer wrong-but-long-enough' } })).status).toBe(401)
      const ok = await request(`${guarded.url}/metrics`, { headers: { Authorization: 'Bearer a-long-enough-secret' } })
      expect(ok.status).toBe(200)
      expect(ok.body.toString()).toMatch(/^tusgate_http_requests_total/m)
      expect((await request(`${off.url}/metrics`)).status).toBe(404)
    } finally {
      await Promise.all([guarded.stop(), off.stop()])
    }
  })
})
