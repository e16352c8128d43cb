/** A whole non-negative integer header, or undefined when absent; NaN when malformed. */
export function integerHeader(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  return /^(0|[1-9]\d{0,15})$/.test(value) && Number.isSafeInteger(Number(value)) ? Number(value) : Number.NaN
}
