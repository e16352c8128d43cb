import { randomBytes } from 'node:crypto'

// Our ids are 32 lowercase hex digits; a pre-create hook may choose its own (ChangeFileInfo.ID) of 16 to
// 128 letters, digits, '_' and '-'. Anything else is refused before a store is touched: no '.', so no id
// names another upload's info or part object, and no '/', so none leaves its folder or prefix.
const UPLOAD_ID = /^[A-Za-z0-9_-]{16,128}$/

export function newUploadId(): string {
  return randomBytes(16).toString('hex')
}

export function isUploadId(id: string): boolean {
  return UPLOAD_ID.test(id)
}
