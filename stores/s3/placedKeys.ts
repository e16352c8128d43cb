import { PlacementError, relativeSegments } from '../placement.js'
import { isUploadId } from '../uploadId.js'

/** S3's longest object key, in bytes (the key prefix included). */
const MAX_KEY_BYTES = 1024
/** The store's own objects: `<id>` (an upload's bytes), `<id>.info`, `<id>.part`, `<id>.waiting/<final id>`. */
const OWN_OBJECT = /^(.*?)(\.info|\.part|\.waiting\/.*)?$/

/**
 * Where hook-placed uploads' bytes are: their Key (under the key prefix) by upload id. An upload's key is
 * learnt when it is created and whenever its info is read (the info records it), so it is known for
 * every call upstream makes on the upload's object, after a restart too.
 */
export class PlacedKeys {
  private readonly keys = new Map<string, string>()
  /** The other way: the upload id by key. */
  private readonly ids = new Map<string, string>()

  constructor(private readonly keyPrefix: string) {}

  /**
   * A hook's Key, refused (PlacementError) when it is absolute, not normalised, too long with the prefix,
   * or could be taken for one of the store's own objects.
   */
  check(place: string): string {
    relativeSegments(place, MAX_KEY_BYTES - Buffer.byteLength(this.keyPrefix))
    const stem = OWN_OBJECT.exec(place)?.[1] ?? ''
    if (isUploadId(stem)) throw new PlacementError(`storage Key '${place.slice(0, 200)}' names one of the store's own objects (an upload id)`)
    return place
  }

  set(id: string, key: string): void {
    this.forget(id)
    this.keys.set(id, key)
    this.ids.set(key, id)
  }

  /** Records the key of an upload from the object key its info holds (`storage.path`, with the prefix). */
  learn(id: string, objectKey: string | undefined): void {
    if (objectKey === undefined || !objectKey.startsWith(this.keyPrefix)) return
    const key = objectKey.slice(this.keyPrefix.length)
    if (key !== id && this.keys.get(id) !== key) this.set(id, key)
  }

  /** The key (without the prefix) of an upload's bytes: its placed key, else its id. */
  keyOf(id: string): string {
    return this.keys.get(id) ?? id
  }

  /** The key of the upload `key` names when it is a placed upload's id; undefined for any other key. */
  placedKeyOf(key: string): string | undefined {
    return this.keys.get(key)
  }

  /** The upload whose bytes are at `key`, among those known here. */
  idAt(key: string): string | undefined {
    return this.ids.get(key)
  }

  forget(id: string): void {
    const key = this.keys.get(id)
    if (key === undefined) return
    this.keys.delete(id)
    if (this.ids.get(key) === id) this.ids.delete(key)
  }
}
