import path from 'node:path'
import { loadConfig } from '../server/config.js'
import { fileStore } from '../stores/file/index.js'
import { storeContract } from './helpers/storeContract.js'
import { tempDir } from './helpers/servers.js'

storeContract('file', async (expirationMs) => {
  const temp = tempDir()
  const config = loadConfig({ FILE_DIR: path.join(temp.dir, 'data'), UPLOAD_EXPIRES_AFTER: String(expirationMs) })
  const backend = await fileStore.create(config)
  return {
    backend,
    async cleanup() {
      await backend.close()
      temp.remove()
    },
  }
})
