import type { Browser } from 'playwright-core'
import { launchChromium, watchPage } from './helpers/browser.js'
import { type InProcessServer, startServer } from './helpers/servers.js'

// The web page in Chromium with the upload list off (UPLOAD_LIST's default): it says so, and asks
// nothing that would fail, so the browser console stays clean.
let browser: Browser
let server: InProcessServer
beforeAll(async () => {
  ;[browser, server] = await Promise.all([launchChromium(), startServer()])
}, 60_000)
afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

test('without UPLOAD_LIST the page loads with no failed request and no console error', async () => {
  const context = await browser.newContext()
  try {
    const page = await context.newPage()
    const problems = await watchPage(page)
    const failed: string[] = []
    page.on('response', (response) => {
      if (response.status() >= 400) failed.push(`${response.status()} ${new URL(response.url()).pathname}`)
    })
    page.on('requestfailed', (request) => failed.push(`failed ${request.url()}`))
    await page.goto(server.url)
    await page.locator('.uppy-Dashboard').waitFor()
    await page.locator('#uploads-status', { hasText: 'The list of finished uploads is turned off on this server.' }).waitFor()
    expect(failed).toEqual([])
    expect(problems).toEqual({ exceptions: [], cspViolations: [], consoleErrors: [] })
  } finally {
    await context.close()
  }
}, 60_000)
