import { randomBytes } from 'node:crypto'

// Our ids are 32 lowercase hex digits: anything else is refused before a store is touched.
const UPLOAD_ID = /^[0-9a-f]{32}$/

export function newUploadId(): string {
  return randomBytes(16).toString('hex')
}

export function isUploadId(id: string): boolean {
  return UPLOAD_ID.test(id)
}
