import path from 'node:path'
import { loadConfig, storeSettings } from '../../server/config.js'
import { openStore } from '../../stores/registry.js'
import { tempDir } from '../helpers/servers.js'
import { storeContract } from '../helpers/storeContract.js'

storeContract('file', async (expirationMs) => {
  const temp = tempDir()
  const backend = await openStore(storeSettings(loadConfig({ FILE_DIR: path.join(temp.dir, 'data'), UPLOAD_EXPIRES_AFTER: String(expirationMs) })))
  return {
    backend,
    async cleanup() {
      await backend.close()
      temp.remove()
    },
  }
})
