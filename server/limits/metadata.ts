import { BASE64, METADATA_KEY } from '../../stores/metadata.js'
import type { Config } from '../config.js'

export type MetadataLimits = Pick<Config, 'MAX_METADATA_KEYS' | 'MAX_METADATA_KEY_LENGTH' | 'MAX_METADATA_VALUE_SIZE'>

/**
 * What is wrong with an Upload-Metadata header (`key base64,key2 base64,key3`), as a short message for
 * a 400, or undefined when it keeps to the tus grammar (the one parseMetadata reads) and to the
 * configured limits: number of keys, key length, decoded value size. Duplicate keys are refused too
 * (which value would win is undefined). Keys named like object built-ins are ordinary keys.
 */
export function metadataProblem(header: string, limits: MetadataLimits): string | undefined {
  const pairs = header.split(',')
  if (pairs.length > limits.MAX_METADATA_KEYS) return `Upload-Metadata has more than ${limits.MAX_METADATA_KEYS} keys`
  const seen = new Set<string>()
  for (const pair of pairs) {
    const [key, value, ...rest] = pair.split(' ')
    if (!METADATA_KEY.test(key) || rest.length > 0) return 'Upload-Metadata keys must be ASCII without spaces or commas, each followed by one Base64 value'
    if (key.length > limits.MAX_METADATA_KEY_LENGTH) return `Upload-Metadata key longer than ${limits.MAX_METADATA_KEY_LENGTH} characters`
    if (seen.has(key)) return `Upload-Metadata key ${key} given twice`
    seen.add(key)
    if (value === undefined) continue
    if (!BASE64.test(value)) return `Upload-Metadata value of ${key} is not Base64`
    if (Buffer.byteLength(value, 'base64') > limits.MAX_METADATA_VALUE_SIZE) {
      return `Upload-Metadata value of ${key} is larger than ${limits.MAX_METADATA_VALUE_SIZE} bytes`
    }
  }
  return undefined
}
