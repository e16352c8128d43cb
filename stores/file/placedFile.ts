import { constants } from 'node:fs'
import { lstat, mkdir, open, readlink, realpath, rm } from 'node:fs/promises'
import path from 'node:path'
import { StoreError } from '../errors.js'
import { PlacementError, relativeSegments } from '../placement.js'
import { isUploadId } from '../uploadId.js'

/** The longest Path a hook may choose, in bytes, and the longest name of one of its folders or its file. */
const MAX_PATH_BYTES = 1024
const MAX_NAME_BYTES = 255

/**
 * A hook's Path as segments under the store's folder `root`, refused (PlacementError) when it leaves the
 * folder, lies in a folder others keep there (`kept`), or could be taken for the store's own files at
 * the top: `<id>`, `<id>.json`, `<id>.json.tmp`, and hidden entries (the health probe, the index of
 * finished uploads).
 */
export function placeSegments(place: string, root = '/', kept: string[] = []): string[] {
  const segments = relativeSegments(place, MAX_PATH_BYTES)
  const refuse = (why: string) => new PlacementError(`storage Path '${place.slice(0, 200)}' ${why}`)
  if (segments.some((segment) => Buffer.byteLength(segment) > MAX_NAME_BYTES)) throw refuse(`has a name longer than ${MAX_NAME_BYTES} bytes`)
  const top = segments[0]
  if (top.startsWith('.') || isUploadId(top.split('.')[0])) throw refuse("begins with a name the store keeps for its own files (an upload id, or a '.')")
  const target = path.join(root, ...segments)
  if (kept.some((folder) => target === folder || target.startsWith(`${folder}${path.sep}`))) throw refuse('lies in a folder the service keeps')
  return segments
}

/**
 * Creates the empty file at `segments` under `root`, and the folders on the way, refusing a way through a
 * symbolic link or out of `root` (PlacementError), and a place that is taken (StoreError 'place-taken'): the file is created
 * only if absent, and never through a link. Resolves with its absolute path.
 */
export async function createPlacedFile(root: string, segments: string[]): Promise<string> {
  let folder = root
  for (const name of segments.slice(0, -1)) {
    folder = path.join(folder, name)
    await mkdir(folder).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error
    })
    const stats = await lstat(folder)
    if (stats.isSymbolicLink()) throw new PlacementError(`storage Path '${segments.join('/')}' passes through a symbolic link`)
    if (!stats.isDirectory()) throw new StoreError('place-taken', `storage Path '${segments.join('/')}' is taken: a file is in its way`)
  }
  // A folder swapped for a link meanwhile would show here.
  if (!(await inside(root, segments))) {
    throw new PlacementError(`storage Path '${segments.join('/')}' leaves the store's folder`)
  }
  const file = path.join(folder, segments[segments.length - 1])
  try {
    await (await open(file, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW)).close()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new StoreError('place-taken', `storage Path '${segments.join('/')}' is taken`, { cause: error })
    throw error
  }
  return file
}

/**
 * Removes an upload's data at `dataPath` (`<root>/<id>`): a file, or the link to a placed file and that
 * file (which the link's creation made: see FileDatastore.create). The link goes last, so that an
 * interrupted removal still leads to the placed file.
 */
export async function removeData(root: string, dataPath: string): Promise<void> {
  const stats = await lstat(dataPath).catch(() => undefined)
  if (stats?.isSymbolicLink()) {
    const target = await readlink(dataPath)
    // Only a Path this store could have made: never a file outside its folder.
    const segments = (() => {
      try {
        return placeSegments(target)
      } catch {
        return undefined
      }
    })()
    if (segments && (await inside(root, segments))) await rm(path.join(root, ...segments), { force: true })
  }
  await rm(dataPath, { force: true })
}

/** Whether the folder of `segments` still resolves to where it is under `root` (no link was put in its way since). */
async function inside(root: string, segments: string[]): Promise<boolean> {
  const folder = await realpath(path.join(root, ...segments.slice(0, -1))).catch(() => undefined)
  return folder === path.join(await realpath(root), ...segments.slice(0, -1))
}
