/** A MIME type without its parameters, lower case: `Image/PNG; q=1` gives `image/png`. */
export function essence(mimeType: string): string {
  return mimeType.split(';')[0].trim().toLowerCase()
}

/** Whether a MIME type (parameters ignored) matches one of the lower-case patterns: exact, `type/*` or `*\/*`. */
export function typeAllowed(filetype: string, allowed: readonly string[]): boolean {
  const type = essence(filetype)
  const [major] = type.split('/')
  return allowed.some((pattern) => pattern === '*/*' || pattern === type || pattern === `${major}/*`)
}
