import { loadConfig, storeSettings } from '../../server/config.js'
import { openStore } from '../../stores/registry.js'
import { tusgateS3Env, useCeph } from '../helpers/ceph.js'
import { storeContract } from '../helpers/storeContract.js'

const ceph = useCeph()

storeContract('s3 (Ceph radosgw)', async (expirationMs) => {
  const env = await tusgateS3Env(ceph(), { UPLOAD_EXPIRES_AFTER: String(expirationMs), S3_KEY_PREFIX: 'contract/' })
  const backend = await openStore(storeSettings(loadConfig(env)))
  return { backend, cleanup: () => backend.close() }
})
