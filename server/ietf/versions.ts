/**
 * The interop versions of draft-ietf-httpbis-resumable-upload that tusgate speaks, each with the parts of
 * the draft's vocabulary that changed between them. A client names its version in every request's
 * Upload-Draft-Interop-Version.
 *
 * - 3: draft -01, Apple's URLSession (iOS 17). Completeness is `Upload-Incomplete` (true while more follows);
 *   every success of a transfer is 201.
 * - 5: draft -03, tus-js-client's `ietf-draft-03`. `Upload-Complete`; appends answer 204.
 * - 6: drafts -04/-05, tus-js-client's `ietf-draft-05`. Appends need `application/partial-upload`;
 *   `Upload-Limit` (lifetime key `expires`); problem types for a mismatching offset and a completed upload.
 * - 8: drafts -09 to -11 and the editor's copy after them (July 2026, still interop 8). `Upload-Limit` with
 *   `max-age`, also on HEAD; no `completed-upload` problem type any more; GET retrieves the offset as HEAD.
 */
export interface Dialect {
  version: number
  /** The header that says whether a request ends the upload; `Upload-Incomplete` says the opposite. */
  completeness: 'Upload-Complete' | 'Upload-Incomplete'
  /** Status of a successful append. */
  appendStatus: 201 | 204
  /** Appends must be `Content-Type: application/partial-upload`. */
  partialUploadType: boolean
  /** The Upload-Limit key for an upload's remaining lifetime, or undefined when the version has no Upload-Limit. */
  lifetimeLimit?: 'expires' | 'max-age'
  /** Problem type bodies (RFC 9457) for offset mismatches and inconsistent lengths. */
  problems: boolean
  /** The `completed-upload` problem type for an append to a completed upload. */
  completedUploadProblem: boolean
  /** GET on an upload retrieves its offset as HEAD does (no content). */
  offsetByGet?: boolean
}

const DIALECTS: Record<number, Dialect> = {
  3: { version: 3, completeness: 'Upload-Incomplete', appendStatus: 201, partialUploadType: false, problems: false, completedUploadProblem: false },
  5: { version: 5, completeness: 'Upload-Complete', appendStatus: 204, partialUploadType: false, problems: false, completedUploadProblem: false },
  6: {
    version: 6,
    completeness: 'Upload-Complete',
    appendStatus: 204,
    partialUploadType: true,
    lifetimeLimit: 'expires',
    problems: true,
    completedUploadProblem: true,
  },
  8: {
    version: 8,
    completeness: 'Upload-Complete',
    appendStatus: 204,
    partialUploadType: true,
    lifetimeLimit: 'max-age',
    problems: true,
    completedUploadProblem: false,
    offsetByGet: true,
  },
}

export const INTEROP_VERSIONS = Object.keys(DIALECTS).map(Number)

export const INTEROP_HEADER = 'upload-draft-interop-version'

/** The dialect a request's Upload-Draft-Interop-Version names, or undefined for a version we do not speak. */
export function dialectOf(header: string): Dialect | undefined {
  return /^\d{1,3}$/.test(header.trim()) ? DIALECTS[Number(header)] : undefined
}

/** A Structured Field Boolean: true, false, undefined when absent, or 'invalid'. */
function sfBoolean(value: string | undefined): boolean | undefined | 'invalid' {
  if (value === undefined) return undefined
  const text = value.trim()
  return text === '?1' ? true : text === '?0' ? false : 'invalid'
}

/** Whether the request ends the upload (from Upload-Complete, or the inverse of Upload-Incomplete). */
export function requestCompletes(dialect: Dialect, value: string | undefined): boolean | undefined | 'invalid' {
  const parsed = sfBoolean(value)
  return dialect.completeness === 'Upload-Incomplete' && typeof parsed === 'boolean' ? !parsed : parsed
}

/** The response header that tells whether the upload is complete, in the dialect's words. */
export function completenessHeader(dialect: Dialect, complete: boolean): Record<string, string> {
  const value = dialect.completeness === 'Upload-Incomplete' ? !complete : complete
  return { [dialect.completeness]: value ? '?1' : '?0' }
}
