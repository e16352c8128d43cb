// Upload-Metadata keys named like object built-ins survive a store round trip as ordinary keys (issue 13,
// item 7): the Azure back end keeps metadata as an Upload-Metadata string and parses it back.
import { Upload } from '@tus/utils'
import { loadConfig, storeSettings } from '../server/config.js'
import { parseMetadata } from '../stores/metadata.js'
import { openStore } from '../stores/registry.js'
import { newUploadId } from '../stores/uploadId.js'
import { type Azurite, startAzurite } from './helpers/azurite.js'

const KEYS = ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf']
const header = KEYS.map((key) => `${key} ${Buffer.from(`value of ${key}`).toString('base64')}`).join(',')

test('parseMetadata gives own keys on an object without a prototype, and refuses a key given twice', () => {
  const metadata = parseMetadata(`${header},filename`) as Record<string, string | null>
  expect(Object.getPrototypeOf(metadata)).toBeNull()
  expect(Object.keys(metadata)).toEqual([...KEYS, 'filename'])
  for (const key of KEYS) expect(metadata[key]).toBe(`value of ${key}`)
  expect(metadata.filename).toBeNull()
  expect(parseMetadata('toString YQ==,toString YQ==')).toBeUndefined()
  expect(parseMetadata('a b c')).toBeUndefined()
})

describe('the Azure store (Azurite)', () => {
  let azurite: Azurite
  beforeAll(async () => {
    azurite = await startAzurite()
  }, 30_000)
  afterAll(() => azurite?.stop())

  test('keeps them through create and getUpload', async () => {
    const container = azurite.containerName()
    const backend = await openStore(storeSettings(loadConfig({ STORE: 'azure', ...azurite.env, AZURE_CONTAINER: container })))
    try {
      const upload = new Upload({ id: newUploadId(), size: 3, offset: 0, metadata: parseMetadata(header) })
      await backend.datastore.create(upload)
      const read = await backend.datastore.getUpload(upload.id)
      expect(Object.entries(read.metadata ?? {})).toEqual(KEYS.map((key) => [key, `value of ${key}`]))
    } finally {
      await backend.close()
      await azurite.client().getContainerClient(container).deleteIfExists()
    }
  })
})
