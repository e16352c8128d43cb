import { toUploadError } from '../server/core/errors.js'
import { BodyCounts, bodyLimitsOf, openFileLimit } from '../server/limits/bodies.js'

test('MAX_BODIES defaults to what the open-file limit leaves room for, MAX_BODIES_PER_CLIENT to a quarter of it, at most 100', () => {
  expect(openFileLimit()).toBeGreaterThan(0) // Linux: /proc/self/limits
  expect(bodyLimitsOf({}, 256)).toEqual({ total: 42, perClient: 10 })
  expect(bodyLimitsOf({}, 1_048_576)).toEqual({ total: 349_482, perClient: 100 })
  expect(openFileLimit('/nonexistent')).toBeNull()
  expect(bodyLimitsOf({}, null)).toEqual({ total: 0, perClient: 100 })
  expect(bodyLimitsOf({ MAX_BODIES: 0, MAX_BODIES_PER_CLIENT: 7 }, 256)).toEqual({ total: 0, perClient: 7 })
})

test('bodies are counted per client and in all, and a release gives the place back once', () => {
  const counts = new BodyCounts({ perClient: 2, total: 3 })
  const a1 = counts.admit('a') as () => void
  counts.admit('a')
  expect(counts.admit('a')).toBe('client')
  counts.admit('b')
  expect(counts.admit('c')).toBe('total')
  a1()
  a1()
  expect(counts.inProgress).toBe(2)
  expect(typeof counts.admit('c')).toBe('function')
})

test('EMFILE-class errors answer 503 with Retry-After; others are not resource pressure', () => {
  for (const code of ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']) {
    const { error } = toUploadError(Object.assign(new Error(code), { code }))
    expect({ status: error.status, retry: error.headers['Retry-After'] }).toEqual({ status: 503, retry: '5' })
  }
  for (const value of [new Error('x'), Object.assign(new Error('x'), { code: 'ENOENT' }), undefined, 'EMFILE'])
    expect(toUploadError(value).error.status).toBe(500)
})
