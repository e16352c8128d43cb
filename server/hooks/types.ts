import { z } from 'zod'

/** tusd v2's hook types, in its order, then pre-access (tusd PR #1077). */
export const HOOK_TYPES = ['pre-create', 'post-create', 'post-receive', 'pre-finish', 'post-finish', 'pre-terminate', 'post-terminate', 'pre-access'] as const
export type HookType = (typeof HOOK_TYPES)[number]

/** The upload as tusd v2 describes it to a hook (`handler.FileInfo`). */
export interface HookUpload {
  /** Empty in pre-create: the upload does not exist yet. */
  ID: string
  /** 0 while the length is deferred (Go's zero value, as tusd sends it). */
  Size: number
  SizeIsDeferred: boolean
  Offset: number
  /** Without tusgate's reserved keys; a key sent without a value has ''. */
  MetaData: Record<string, string>
  /** tusgate does not speak the concatenation extension: always false, false, null. */
  IsPartial: boolean
  IsFinal: boolean
  PartialUploads: string[] | null
  /** Where the store keeps the bytes (tusd's shape, e.g. Type/Path for files, Type/Bucket/Key for S3); null in pre-create. */
  Storage: Record<string, string> | null
}

/** The client's request that caused the hook (`handler.HTTPRequest`). */
export interface HookHTTPRequest {
  Method: string
  URI: string
  RemoteAddr: string
  /** Every request header, names canonicalized as Go does (`Upload-Metadata`), values as lists. */
  Header: Record<string, string[]>
}

/** What a request does to an existing upload: read it (HEAD, GET) or write it (PATCH, DELETE, a final concatenation naming it). */
export type AccessMode = 'read' | 'write'

/** The JSON body POSTed to HOOKS_URL (`hooks.HookRequest`); pre-access adds `Access`. */
export interface HookRequest {
  Type: HookType
  Event: { Upload: HookUpload; HTTPRequest: HookHTTPRequest; Access?: { Mode: AccessMode } }
}

const httpResponse = z.object({
  StatusCode: z.number().int().min(0).max(599).optional(),
  Body: z.string().optional(),
  Header: z.record(z.string(), z.string()).nullish(),
})

/** The receiver's JSON answer (`hooks.HookResponse`); every field optional, unknown ones ignored. */
export const hookResponse = z.object({
  HTTPResponse: httpResponse.nullish(),
  RejectUpload: z.boolean().optional(),
  RejectTermination: z.boolean().optional(),
  RejectAccess: z.boolean().optional(),
  ChangeFileInfo: z
    .object({
      ID: z.string().optional(),
      MetaData: z.record(z.string(), z.string()).nullish(),
      Storage: z.record(z.string(), z.string()).nullish(),
    })
    .nullish(),
  StopUpload: z.boolean().optional(),
})

export type HookResponse = z.infer<typeof hookResponse>
export type HookHTTPResponse = z.infer<typeof httpResponse>
