import { parseProxyTrust, trustsHop } from '../server/proxyTrust.js'

test('TRUST_PROXY forms: none, a hop count, addresses and CIDRs with named ranges; true refused', () => {
  expect(parseProxyTrust('false')).toBe(0)
  expect(parseProxyTrust('2')).toBe(2)
  expect(parseProxyTrust(' 10.0.0.0/8, fd00::1 ,uniquelocal')).toEqual(['10.0.0.0/8', 'fd00::1', 'uniquelocal'])
  for (const bad of ['true', '17', '10.0.0.0/33', '::1/129', '10.0.0.1/8/8', 'proxy.example', ',']) expect(() => parseProxyTrust(bad)).toThrow()
})

test('a hop count trusts the nearest hops whatever their address; a list trusts its addresses only', () => {
  const one = trustsHop(1)
  expect([one('203.0.113.9', 0), one('203.0.113.9', 1)]).toEqual([true, false])
  expect(trustsHop(0)('127.0.0.1', 0)).toBe(false)
  const list = trustsHop(['10.1.0.0/16', 'loopback', '2001:db8::1'])
  expect(['10.1.2.3', '::ffff:10.1.2.3', '127.0.0.5', '::1', '2001:db8::1'].map((a) => list(a, 0))).toEqual([true, true, true, true, true])
  expect(['10.2.0.1', '2001:db8::2', 'garbage', undefined].map((a) => list(a, 0))).toEqual([false, false, false, false])
})
