/** How long a client refused for lack of resources is asked to wait, in seconds. */
export const RETRY_AFTER_SECONDS = 5

const PRESSURE_CODES = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM'])

/** Whether an error is the system running short of file descriptors or buffers: a 503 with Retry-After, not a 500. */
export function isResourcePressure(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined
  return typeof code === 'string' && PRESSURE_CODES.has(code)
}
