import { type JWTPayload, SignJWT } from 'jose'

/** The HS256 secret test servers are given (JWT_SECRET). */
export const TEST_SECRET = 'a-test-secret-that-is-long-enough-for-hs256'

export const nowSeconds = () => Math.floor(Date.now() / 1000)

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` })

/**
 * A minter of HS256 tokens: `sub` alice, valid for 10 minutes, plus `defaults` (an issuer, an audience);
 * a call's `claims` override them (undefined removes one).
 */
export function hsTokens(defaults: JWTPayload = {}) {
  return (claims: JWTPayload = {}, secret = TEST_SECRET): Promise<string> => {
    const payload: JWTPayload = { sub: 'alice', exp: nowSeconds() + 600, ...defaults, ...claims }
    for (const key of Object.keys(payload)) if (payload[key] === undefined) delete payload[key]
    return new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret))
  }
}
