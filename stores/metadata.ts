// tus 1.0.0: a key is ASCII without spaces and commas; a value is Base64.
export const METADATA_KEY = /^[\x21-\x2b\x2d-\x7e]+$/
export const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * An Upload-Metadata header (`key base64,key2 base64,key3`) as an object without a prototype, so that a
 * key named like a built-in (`constructor`, `toString`, `__proto__`) is an ordinary key like any other;
 * undefined when the header breaks the grammar or repeats a key.
 */
export function parseMetadata(header: string): Record<string, string | null> | undefined {
  const metadata: Record<string, string | null> = Object.create(null)
  for (const pair of header.split(',')) {
    const [key, value, ...rest] = pair.split(' ')
    if (!METADATA_KEY.test(key) || rest.length > 0 || Object.hasOwn(metadata, key)) return undefined
    if (value !== undefined && !BASE64.test(value)) return undefined
    metadata[key] = value === undefined ? null : Buffer.from(value, 'base64').toString('utf8')
  }
  return metadata
}
