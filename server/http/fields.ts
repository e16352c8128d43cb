/** The IETF draft's fields beyond tus's own, which a browser must be allowed to send and to read (CORS). */
export const IETF_FIELDS = [
  'Upload-Draft-Interop-Version',
  'Upload-Complete',
  'Upload-Incomplete',
  'Upload-Limit',
  'Content-Disposition',
  'Repr-Digest',
  'Want-Repr-Digest',
]
