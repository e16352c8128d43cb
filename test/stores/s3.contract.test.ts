import { loadConfig, storeSettings } from '../../server/config.js'
import { openStore } from '../../stores/registry.js'
import { type CephCluster, startCeph, tusgateS3Env } from '../helpers/ceph.js'
import { storeContract } from '../helpers/storeContract.js'

let ceph: CephCluster
beforeAll(async () => {
  ceph = await startCeph()
}, 120_000)
afterAll(() => ceph?.stop())

storeContract('s3 (Ceph radosgw)', async (expirationMs) => {
  const env = await tusgateS3Env(ceph, { UPLOAD_EXPIRES_AFTER: String(expirationMs), S3_KEY_PREFIX: 'contract/' })
  const backend = await openStore(storeSettings(loadConfig(env)))
  return { backend, cleanup: () => backend.close() }
})
