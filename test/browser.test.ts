// The web page in a real browser: Debian's Chromium (headless, driven by playwright-core) uploads through
// the Uppy Dashboard to tusgate running as its own process.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { launchChromium, type PageProblems, throttleUpload, watchPage } from './helpers/browser.js'
import { randomData, sha256, sha256OfDownload } from './helpers/http.js'
import { processPool, ROOT, type ServerProcess } from './helpers/servers.js'
import { hsTokens, TEST_SECRET } from './helpers/tokens.js'

const MiB = 1024 * 1024
const ARTIFACTS = path.join(ROOT, 'test-artifacts')

let browser: Browser | undefined
const contexts = new Set<BrowserContext>()
const { newDir, launch, stop, cleanup } = processPool('tusgate-browser-', { UPLOAD_LIST: 'true' })

beforeAll(async () => {
  browser = await launchChromium()
}, 60_000)

afterEach(async () => {
  await Promise.all([...contexts].map((context) => context.close().catch(() => undefined)))
  contexts.clear()
  await cleanup()
})

afterAll(async () => {
  await browser?.close()
})

async function newPage(): Promise<{ context: BrowserContext; page: Page; problems: PageProblems }> {
  if (!browser) throw new Error('no browser')
  const context = await browser.newContext({ viewport: { width: 1100, height: 860 } })
  contexts.add(context)
  context.setDefaultTimeout(15_000)
  const page = await context.newPage()
  const problems = await watchPage(page)
  return { context, page, problems }
}

async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(20)
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Picks a file as a user would: through the Dashboard's own (hidden) file input, not the folder one. */
async function addFile(page: Page, file: string): Promise<void> {
  await page.locator('input.uppy-Dashboard-input[type=file]:not([webkitdirectory])').setInputFiles(file)
}

async function clickUpload(page: Page): Promise<void> {
  await page.locator('.uppy-StatusBar-actionBtn--upload').click()
}

interface SeenRequest {
  phase: string
  method: string
  path: string
  offset?: number
}

/** Every request the page sends to the tus endpoint, tagged with the phase of the test it was sent in. */
function recordTusRequests(page: Page, phase: () => string): SeenRequest[] {
  const seen: SeenRequest[] = []
  page.on('request', (req) => {
    const url = new URL(req.url())
    if (!url.pathname.startsWith('/files')) return
    const offset = req.headers()['upload-offset']
    seen.push({ phase: phase(), method: req.method(), path: url.pathname, offset: offset === undefined ? undefined : Number(offset) })
  })
  return seen
}

const finishedLink = (page: Page, filename: string) => page.locator('#uploads li a', { hasText: filename })

async function expectServerCopy(server: ServerProcess, href: string, data: Buffer): Promise<void> {
  const download = await withTimeout(sha256OfDownload(new URL(href, server.url).toString()), 30_000, `GET ${href}`)
  expect(download).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
}

describe('the web page in Chromium', () => {
  test('(a) a 20 MiB file through the Dashboard completes, matches by SHA-256 and is listed; (c) screenshot', async () => {
    const dir = newDir()
    const server = await launch(dir)
    const data = randomData(20 * MiB, 7001)
    const file = path.join(dir, 'twenty-mib.bin')
    writeFileSync(file, data)
    const { page, problems } = await newPage()
    const requests = recordTusRequests(page, () => 'upload')

    await page.goto(server.url)
    await page.locator('.uppy-Dashboard').waitFor()
    await page.locator('#uploads-status', { hasText: 'No finished uploads yet.' }).waitFor()
    await addFile(page, file)
    await clickUpload(page)

    const link = finishedLink(page, 'twenty-mib.bin')
    await link.waitFor({ timeout: 60_000 })
    await page.locator('.uppy-StatusBar.is-complete').waitFor()
    const href = (await link.getAttribute('href')) as string
    expect(href).toMatch(/^\/files\/[0-9a-f]{32}$/)
    await expectServerCopy(server, href, data)

    // One creation, then 5 MiB PATCHes (the page's chunkSize), each at the offset the last one reached.
    expect(requests.map((r) => [r.method, r.offset])).toEqual([
      ['POST', undefined],
      ['PATCH', 0],
      ['PATCH', 5 * MiB],
      ['PATCH', 10 * MiB],
      ['PATCH', 15 * MiB],
    ])
    expect(requests.slice(1).every((r) => r.path === href)).toBe(true)
    const item = page.locator('#uploads li').filter({ hasText: 'twenty-mib.bin' })
    expect(await item.locator('.size').textContent()).toBe('20.0 MiB')
    expect(await item.locator('.size').getAttribute('title')).toBe(`${20 * MiB} bytes`)
    // A finished upload leaves nothing to resume in localStorage (removeFingerprintOnSuccess).
    expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('tus::')))).toEqual([])
    expect(problems).toEqual({ exceptions: [], cspViolations: [], consoleErrors: [] })

    // (c) What it looks like: the Dashboard with the finished upload, and the list below it.
    mkdirSync(ARTIFACTS, { recursive: true })
    const screenshot = path.join(ARTIFACTS, 'web-ui.png')
    await page.screenshot({ path: screenshot, fullPage: true })
    expect(existsSync(screenshot)).toBe(true)
    expect(statSync(screenshot).size).toBeGreaterThan(20_000)
  }, 90_000)

  test('(b) SIGKILL mid-upload, a new server on the same port and FILE_DIR, a reload: the same file resumes', async () => {
    const dir = newDir()
    const first = await launch(dir)
    const data = randomData(20 * MiB, 7002)
    const file = path.join(dir, 'resume-me.bin')
    writeFileSync(file, data)
    const { context, page, problems } = await newPage()
    let phase = 'before'
    const requests = recordTusRequests(page, () => phase)
    // About 2 MiB/s, so the second 5 MiB PATCH is still being sent when the server is killed.
    const cdp = await context.newCDPSession(page)
    await throttleUpload(cdp, 2 * MiB)

    await page.goto(first.url)
    await addFile(page, file)
    await clickUpload(page)
    await waitFor(() => requests.some((r) => r.method === 'PATCH'), 15_000, 'the first PATCH')
    const uploadPath = requests.find((r) => r.method === 'PATCH')?.path as string
    const stored = path.join(dir, 'data', uploadPath.split('/').pop() as string)
    const storedSize = () => (existsSync(stored) ? statSync(stored).size : 0)
    await waitFor(() => storedSize() >= 7 * MiB, 30_000, 'the server to store 7 MiB')

    // The old page keeps retrying; none of its retries may reach the new server before the reload.
    let blocked = true
    await page.route('**/files**', (route) => (blocked ? route.abort('connectionrefused') : route.continue()))
    first.child.kill('SIGKILL')
    await withTimeout(first.exited, 5_000, 'the killed server to exit')
    expect(first.child.signalCode).toBe('SIGKILL')
    const kept = storedSize()
    // Inside the second PATCH: more than the first chunk, not all of the second.
    expect(kept).toBeGreaterThan(5 * MiB)
    expect(kept).toBeLessThan(10 * MiB)

    // tus-js-client keeps the upload URL in localStorage, under Uppy's fingerprint of the file.
    const saved = await page.evaluate(() =>
      Object.keys(localStorage)
        .filter((k) => k.startsWith('tus::'))
        .map((k) => JSON.parse(localStorage.getItem(k) as string).uploadUrl as string),
    )
    expect(saved).toEqual([`${first.url}${uploadPath}`])

    const second = await launch(dir, { PORT: String(first.port) })
    expect(second.port).toBe(first.port)
    await throttleUpload(cdp, null)
    phase = 'after reload'
    await page.reload()
    blocked = false
    await page.unroute('**/files**')
    await page.locator('#interrupted', { hasText: 'resume-me.bin' }).waitFor()

    await addFile(page, file)
    await clickUpload(page)
    const link = finishedLink(page, 'resume-me.bin')
    await link.waitFor({ timeout: 60_000 })
    expect(await link.getAttribute('href')).toBe(uploadPath)
    await expectServerCopy(second, uploadPath, data)

    const after = requests.filter((r) => r.phase === 'after reload')
    // No new upload: a HEAD for the stored URL, then PATCHes from the offset the server kept.
    expect(after.some((r) => r.method === 'POST')).toBe(false)
    expect(after[0]).toMatchObject({ method: 'HEAD', path: uploadPath })
    const firstPatch = after.find((r) => r.method === 'PATCH')
    expect(firstPatch?.offset).toBe(kept)
    expect(firstPatch?.offset).toBeGreaterThan(0)
    expect(after.every((r) => r.path === uploadPath)).toBe(true)
    expect(await page.locator('#interrupted').isHidden()).toBe(true)
    // Refused connections were logged to the console while the server was down; nothing else went wrong.
    expect(problems.exceptions).toEqual([])
    expect(problems.cspViolations).toEqual([])
    await stop(second)
  }, 120_000)

  test('(d) AUTH_MODE=jwt: the token typed into the page goes with every tus request, the list and the download', async () => {
    const dir = newDir()
    const server = await launch(dir, { AUTH_MODE: 'jwt', JWT_SECRET: TEST_SECRET })
    const data = randomData(MiB + 3, 7003)
    const file = path.join(dir, 'with-token.bin')
    writeFileSync(file, data)
    const token = await hsTokens()({ sub: 'alice' })
    const { page, problems } = await newPage()
    const authorizations: Array<[string, string | undefined]> = []
    page.on('request', (req) => {
      const { pathname } = new URL(req.url())
      if (pathname.startsWith('/files') || pathname === '/api/uploads') authorizations.push([`${req.method()} ${pathname}`, req.headers().authorization])
    })

    await page.goto(server.url)
    await page.locator('#uploads-status', { hasText: 'Enter your access token to see your uploads.' }).waitFor()
    await page.locator('#token').fill(token)
    await page.locator('#token').press('Tab')
    await page.locator('#uploads-status', { hasText: 'No finished uploads yet.' }).waitFor()
    await addFile(page, file)
    await clickUpload(page)

    const link = finishedLink(page, 'with-token.bin')
    await link.waitFor({ timeout: 60_000 })
    const href = (await link.getAttribute('href')) as string
    // A plain link cannot send the token: the page's link fetches the upload with it and saves it.
    expect((await sha256OfDownload(new URL(href, server.url).toString())).status).toBe(401)
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()])
    const saved = path.join(dir, 'saved.bin')
    await download.saveAs(saved)
    expect(sha256(readFileSync(saved))).toBe(sha256(data))

    const methods = authorizations.filter(([, authorization]) => authorization === `Bearer ${token}`).map(([request]) => request.split(' ')[0])
    expect(methods).toEqual(expect.arrayContaining(['POST', 'PATCH', 'GET']))
    // Only the list's first request, before the token was typed, went without it.
    expect(authorizations.filter(([, authorization]) => authorization !== `Bearer ${token}`)).toEqual([['GET /api/uploads', undefined]])
    expect(await page.evaluate(() => sessionStorage.getItem('tusgate-token'))).toBe(token)
    expect(problems.exceptions).toEqual([])
    expect(problems.cspViolations).toEqual([])
  }, 90_000)
})
