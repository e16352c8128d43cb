// The machine's baseline: a raw Node http server that pipes each request body (PUT, POST or PATCH, as
// curl sends it) into a new file with
// fs.createWriteStream. FSYNC=true flushes the file to disk (fsync, via the stream's `flush`
// option, as tusgate's file store does) before the response. Env: DIR, PORT (0), FSYNC (false).
import { createWriteStream } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'

const dir = process.env.DIR
if (!dir) throw new Error('DIR is required')
const fsync = process.env.FSYNC === 'true'
let count = 0

const server = http.createServer(async (req, res) => {
  if (req.method !== 'PUT' && req.method !== 'POST' && req.method !== 'PATCH') {
    res.writeHead(405).end()
    return
  }
  const name = `upload-${++count}`
  const file = createWriteStream(path.join(dir, name), { flush: fsync })
  try {
    await pipeline(req, file)
    res.writeHead(201, { 'Content-Type': 'application/json' }).end(JSON.stringify({ name, bytes: file.bytesWritten }))
  } catch (error) {
    if (!res.headersSent) res.writeHead(500).end(String(error))
  }
})
server.requestTimeout = 0
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(JSON.stringify({ message: 'listening', port, fsync }))
})
process.once('SIGTERM', () => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
})
