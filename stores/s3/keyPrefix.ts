import type { S3 } from '@aws-sdk/client-s3'

type Input = {
  Key?: string
  Prefix?: string
  Delete?: { Objects?: { Key?: string }[] }
}
const LISTINGS = new Set(['ListMultipartUploadsCommand', 'ListObjectsV2Command'])

type Output = { Uploads?: { Key?: string }[]; Contents?: { Key?: string }[] }

/**
 * Puts every object this client touches under a key prefix, as an SDK middleware, since
 * `@tus/s3-store` names objects by upload id alone; an upload's own object goes to the key a hook
 * chose for it instead, when `placedKeyOf` names one for its id. Listings are narrowed to the prefix
 * and their keys handed back without it.
 */
export function useKeyPrefix(client: S3, prefix: string, placedKeyOf: (key: string) => string | undefined = () => undefined): void {
  const keyOf = (key: string) => prefix + (placedKeyOf(key) ?? key)
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Input
      const prefixed: Input = { ...input }
      if (input.Key !== undefined) prefixed.Key = keyOf(input.Key)
      if (input.Delete?.Objects) {
        prefixed.Delete = { ...input.Delete, Objects: input.Delete.Objects.map((o) => ({ ...o, Key: o.Key === undefined ? o.Key : keyOf(o.Key) })) }
      }
      if (LISTINGS.has(context.commandName ?? '')) prefixed.Prefix = prefix + (input.Prefix ?? '')
      const result = await next({ ...args, input: prefixed })
      const output = result.output as Output
      if (prefix) {
        for (const entry of [...(output.Uploads ?? []), ...(output.Contents ?? [])]) {
          if (entry.Key?.startsWith(prefix)) entry.Key = entry.Key.slice(prefix.length)
        }
      }
      return result
    },
    { step: 'initialize', name: 'tusgateKeyPrefix' },
  )
}
