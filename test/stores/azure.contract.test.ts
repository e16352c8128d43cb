import { loadConfig, storeSettings } from '../../server/config.js'
import { openStore } from '../../stores/registry.js'
import { type Azurite, startAzurite } from '../helpers/azurite.js'
import { storeContract } from '../helpers/storeContract.js'

let azurite: Azurite
beforeAll(async () => {
  azurite = await startAzurite()
}, 30_000)
afterAll(() => azurite?.stop())

storeContract('azure (Azurite)', async (expirationMs) => {
  const container = azurite.containerName()
  const env = { STORE: 'azure', ...azurite.env, AZURE_CONTAINER: container, UPLOAD_EXPIRES_AFTER: String(expirationMs) }
  const backend = await openStore(storeSettings(loadConfig(env)))
  return {
    backend,
    async cleanup() {
      await backend.close()
      await azurite.client().getContainerClient(container).deleteIfExists()
    },
  }
})
