import { createRemoteJWKSet, errors, type JWTPayload, type JWTVerifyOptions, jwtVerify } from 'jose'
import type { Config } from '../config.js'

/** What a verified token lets its bearer do. */
export interface Grant {
  /** The token's `sub`. */
  principal: string
  /** `max_size`: the largest upload, in bytes. */
  maxSize?: number
  /** `allowed_types`: MIME types (`image/png`) or prefixes (`image/*`, `*\/*`) an upload's `filetype` must match. */
  allowedTypes?: string[]
}

/** A token that is not acceptable: 401 with `error="invalid_token"`. */
export class InvalidToken extends Error {}

/** Tokens cannot be checked right now (the JWKS cannot be fetched): 503, the client retries. */
export class KeysUnavailable extends Error {}

export type Verifier = (token: string) => Promise<Grant>

const MAX_PRINCIPAL_LENGTH = 256
// type/subtype, where either may be '*' (a whole type, or anything).
const TYPE_PATTERN = /^(?:[a-z0-9!#$&^_.+-]+|\*)\/(?:[a-z0-9!#$&^_.+-]+|\*)$/i

const CLAIM_REASONS: Record<string, string> = {
  nbf: 'the token is not valid yet',
  iss: 'the token has the wrong issuer',
  aud: 'the token has the wrong audience',
}

/** Why a token was refused, in a few words a client developer can act on; KeysUnavailable for our own trouble. */
function classify(error: unknown): Error {
  if (error instanceof errors.JWTExpired) return new InvalidToken('the token has expired')
  if (error instanceof errors.JWTClaimValidationFailed) {
    return new InvalidToken(
      CLAIM_REASONS[error.claim] ?? (error.reason === 'missing' ? `the token has no ${error.claim} claim` : `the token's ${error.claim} claim is invalid`),
    )
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return new InvalidToken('the token signature is invalid')
  if (error instanceof errors.JWKSNoMatchingKey) return new InvalidToken('no known key matches the token')
  if (error instanceof errors.JOSEAlgNotAllowed) return new InvalidToken('the token algorithm is not accepted')
  if (
    error instanceof errors.JWKSMultipleMatchingKeys ||
    error instanceof errors.JWSInvalid ||
    error instanceof errors.JWTInvalid ||
    error instanceof errors.JOSENotSupported
  ) {
    return new InvalidToken('the token is malformed')
  }
  // A JWKS that cannot be fetched, times out or is not a key set: not the client's fault.
  return new KeysUnavailable(error instanceof Error ? error.message : String(error))
}

/** The grant of a verified payload; its custom claims, when present, must be well formed. */
function grantOf(payload: JWTPayload): Grant {
  const { sub, max_size: maxSize, allowed_types: allowedTypes } = payload
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_PRINCIPAL_LENGTH) {
    throw new InvalidToken(`the token's sub claim must be a string of 1 to ${MAX_PRINCIPAL_LENGTH} characters`)
  }
  const grant: Grant = { principal: sub }
  if (maxSize !== undefined) {
    if (typeof maxSize !== 'number' || !Number.isSafeInteger(maxSize) || maxSize < 0) {
      throw new InvalidToken("the token's max_size claim must be a whole number of bytes")
    }
    grant.maxSize = maxSize
  }
  if (allowedTypes !== undefined) {
    if (!Array.isArray(allowedTypes) || !allowedTypes.every((t) => typeof t === 'string' && TYPE_PATTERN.test(t))) {
      throw new InvalidToken("the token's allowed_types claim must be a list of MIME types like image/png or image/*")
    }
    grant.allowedTypes = allowedTypes.map((t: string) => t.toLowerCase())
  }
  return grant
}

/**
 * Verifies bearer tokens as the config says: HS256 with JWT_SECRET, or RS256/ES256 with the keys at
 * JWT_JWKS_URL (jose caches them, refetches for an unknown `kid` at most once per JWT_JWKS_COOLDOWN,
 * and drops them after JWT_JWKS_MAX_AGE). The signature, `exp` (required), `nbf`, and, when
 * configured, `iss` and `aud` are checked; `sub` is required and becomes the principal.
 */
export function createVerifier(
  config: Pick<Config, 'JWT_SECRET' | 'JWT_JWKS_URL' | 'JWT_JWKS_COOLDOWN' | 'JWT_JWKS_MAX_AGE' | 'JWT_ISSUER' | 'JWT_AUDIENCE'>,
): Verifier {
  const options = (algorithms: string[]): JWTVerifyOptions => ({
    algorithms,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    requiredClaims: ['sub', 'exp'],
  })
  let verify: (token: string) => Promise<JWTPayload>
  if (config.JWT_SECRET !== undefined) {
    const secret = new TextEncoder().encode(config.JWT_SECRET)
    const checks = options(['HS256'])
    verify = async (token) => (await jwtVerify(token, secret, checks)).payload
  } else if (config.JWT_JWKS_URL !== undefined) {
    const keys = createRemoteJWKSet(new URL(config.JWT_JWKS_URL), {
      cooldownDuration: config.JWT_JWKS_COOLDOWN,
      cacheMaxAge: config.JWT_JWKS_MAX_AGE,
    })
    const checks = options(['RS256', 'ES256'])
    verify = async (token) => (await jwtVerify(token, keys, checks)).payload
  } else {
    throw new Error('AUTH_MODE=jwt needs JWT_SECRET or JWT_JWKS_URL')
  }
  return async (token) => {
    let payload: JWTPayload
    try {
      payload = await verify(token)
    } catch (error) {
      throw classify(error)
    }
    return grantOf(payload)
  }
}
