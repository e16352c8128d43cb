// A bare @tus/server with @tus/file-store, as their README sets them up. Env: DIR, PORT (0).
import type { AddressInfo } from 'node:net'
import { FileStore } from '@tus/file-store'
import { Server } from '@tus/server'

const directory = process.env.DIR
if (!directory) throw new Error('DIR is required')

const tus = new Server({ path: '/files', datastore: new FileStore({ directory }) })
const server = tus.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(JSON.stringify({ message: 'listening', port }))
})
process.once('SIGTERM', () => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
})
