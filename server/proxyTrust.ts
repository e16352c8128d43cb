import net from 'node:net'

/**
 * Which proxies in front of the service are trusted to report the client's address (X-Forwarded-For) and
 * the URL it used (X-Forwarded-Host, X-Forwarded-Proto): none (0), the nearest `hops` of them, or those
 * connecting from the listed addresses.
 */
export type ProxyTrust = number | string[]

// Names for the usual private ranges, as Express (proxy-addr) knows them.
const RANGES: Record<string, string[]> = {
  loopback: ['127.0.0.1/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
}

const FORMS = "the number of proxies in front of the service (e.g. 1), or their addresses (e.g. 10.0.0.0/8,::1 or 'loopback')"

/** TRUST_PROXY's text as a ProxyTrust; throws a message naming the accepted forms. */
export function parseProxyTrust(text: string): ProxyTrust {
  const value = text.trim().toLowerCase()
  if (value === 'false') return 0
  // Trusting every hop lets a client put any address first in X-Forwarded-For and be counted as it.
  if (value === 'true') throw new Error(`'true' would trust every hop, so a client could choose its own address; give ${FORMS}`)
  if (/^\d+$/.test(value)) {
    const hops = Number(value)
    if (hops > 16) throw new Error(`expected at most 16 hops, got ${hops}`)
    return hops
  }
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
  const bad = entries.find((entry) => !(entry in RANGES) && subnetOf(entry) === undefined)
  if (entries.length === 0 || bad !== undefined) throw new Error(`expected ${FORMS}, got '${bad ?? text}'`)
  return entries
}

/** An address or CIDR as [address, prefix, family], or undefined when it is neither. */
function subnetOf(entry: string): [string, number, 'ipv4' | 'ipv6'] | undefined {
  const [address, prefix, ...rest] = entry.split('/')
  const version = net.isIP(address)
  if (version === 0 || rest.length > 0) return undefined
  const max = version === 4 ? 32 : 128
  const bits = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : Number.NaN
  if (!(bits >= 0 && bits <= max)) return undefined
  return [address, bits, version === 4 ? 'ipv4' : 'ipv6']
}

/**
 * Whether the `hop`-th address of a request's chain is a trusted proxy's (hop 0: the connection's peer,
 * then X-Forwarded-For from right to left), in the shape Express's 'trust proxy' takes: the client's
 * address is then the first one not trusted.
 */
export function trustsHop(trust: ProxyTrust): (address: string | undefined, hop: number) => boolean {
  if (typeof trust === 'number') return (_address, hop) => hop < trust
  const list = new net.BlockList()
  for (const entry of trust) {
    for (const cidr of RANGES[entry] ?? [entry]) {
      const [address, bits, family] = subnetOf(cidr) as [string, number, 'ipv4' | 'ipv6']
      list.addSubnet(address, bits, family)
    }
  }
  return (address) => {
    const version = address === undefined ? 0 : net.isIP(address)
    return version !== 0 && list.check(address as string, version === 4 ? 'ipv4' : 'ipv6')
  }
}
