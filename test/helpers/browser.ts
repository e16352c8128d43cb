import { existsSync } from 'node:fs'
import { type Browser, type CDPSession, chromium, type Page } from 'playwright-core'

/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it). */
export const CHROMIUM_PATH = '/usr/bin/chromium'

// Headless, as root, on a closed network: without the background-networking flags Chromium keeps
// trying Google's services and floods the network with refused connections.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing: install Debian's chromium package (.ci/run does)`)
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 })
}

export interface PageProblems {
  /** Uncaught exceptions in the page. */
  exceptions: string[]
  /** Content-Security-Policy violations (blocked scripts, styles, fetches...). */
  cspViolations: string[]
  /** Console errors, failed requests included. */
  consoleErrors: string[]
}

/** Collects a page's uncaught exceptions, CSP violations and console errors from now on. */
export async function watchPage(page: Page): Promise<PageProblems> {
  const problems: PageProblems = { exceptions: [], cspViolations: [], consoleErrors: [] }
  await page.exposeFunction('__reportCspViolation', (text: string) => problems.cspViolations.push(text))
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      const report = (window as unknown as { __reportCspViolation(text: string): void }).__reportCspViolation
      report(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`)
    })
  })
  page.on('pageerror', (error) => problems.exceptions.push(error.message))
  page.on('console', (message) => {
    if (message.type() === 'error') problems.consoleErrors.push(message.text())
  })
  return problems
}

/**
 * Caps the page's upload bandwidth with Chromium's network emulation (bytes per second), or lifts the
 * cap with `null`. The setting stays across reloads of the page until changed.
 */
export async function throttleUpload(session: CDPSession, bytesPerSecond: number | null): Promise<void> {
  await session.send('Network.enable')
  await session.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: bytesPerSecond ?? -1,
  })
}
