import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { type RequestHandler, Router } from 'express'
import type { StoreBackend } from '../../stores/types.js'
import type { Config } from '../config.js'
import { CursorError, type FinishedIndex, type IndexEntry } from '../listing/finishedIndex.js'
import { requestContext } from '../requestContext.js'
import { APP_CSS, APP_JS, UPPY_MODULE_PLACEHOLDER } from './client.js'
import { renderPage } from './page.js'
import { securityHeaders } from './securityHeaders.js'

/** The JSON list of finished uploads. */
export const UPLOADS_PATH = '/api/uploads'
/** At most this many uploads are listed on one page (`limit`, by default this many). */
export const LIST_LIMIT = 100

/** For assets whose URL changes with their content (a hash, or Uppy's version). */
const IMMUTABLE = 'public, max-age=31536000, immutable'
const ONE_YEAR_MS = 365 * 24 * 60 * 60 * 1000

/** One finished upload, as `GET /api/uploads` lists it. */
export interface ListedUpload {
  id: string
  filename: string | null
  filetype: string | null
  size: number
  /** Where it downloads, relative to this server: `<TUS_PATH>/<id>`. */
  url: string
  /** ISO 8601. */
  createdAt: string | null
}

/** The folder of Uppy's prebuilt browser bundles (`uppy.min.mjs`, `uppy.min.css`), and Uppy's version. */
function uppyDist(): { dir: string; version: string } {
  const manifest = createRequire(import.meta.url).resolve('uppy/package.json')
  const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }
  return { dir: path.join(path.dirname(manifest), 'dist'), version }
}

const shortHash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16)

function listed({ id, filename, filetype, size, createdAt }: IndexEntry, tusPath: string): ListedUpload {
  return { id, filename, filetype, size, url: `${tusPath}/${id}`, createdAt }
}

/** `limit` (1 to LIST_LIMIT, LIST_LIMIT by default) and `before`, or undefined when either is malformed. */
function pageQuery(query: Record<string, unknown>): { limit: number; before?: string } | undefined {
  const { limit = String(LIST_LIMIT), before } = query
  if (typeof limit !== 'string' || !/^[1-9][0-9]{0,2}$/.test(limit) || Number(limit) > LIST_LIMIT) return undefined
  if (before !== undefined && (typeof before !== 'string' || before.length > 1024)) return undefined
  return { limit: Number(limit), before }
}

/**
 * The web page at `/` (an Uppy Dashboard uploading to the tus endpoint, and the finished uploads),
 * its assets under `/ui/`, and `GET /api/uploads`. No build step: Uppy's own ES module bundle is served
 * from node_modules, and the page's script and styles are strings (client.ts). Every response here
 * carries the browser security headers; the tus routes are left alone. With AUTH_MODE=jwt the page asks
 * for a token, and the list (behind `authenticate`) shows only the uploads of the token's principal.
 */
export function webUi(
  config: Pick<Config, 'TUS_PATH' | 'UPLOAD_LIST' | 'AUTH_MODE' | 'UPLOAD_LIST_CONCURRENCY'>,
  store: StoreBackend,
  authenticate: RequestHandler,
  finished?: FinishedIndex,
): Router {
  const uppy = uppyDist()
  const uppyBase = `/ui/uppy-${uppy.version}`
  const appJs = APP_JS.replace(UPPY_MODULE_PLACEHOLDER, `${uppyBase}/uppy.min.mjs`)
  const urls = {
    endpoint: config.TUS_PATH,
    uploads: config.UPLOAD_LIST ? UPLOADS_PATH : '',
    auth: config.AUTH_MODE,
    uppyModule: `${uppyBase}/uppy.min.mjs`,
    uppyCss: `${uppyBase}/uppy.min.css`,
    appJs: `/ui/app-${shortHash(appJs)}.js`,
    appCss: `/ui/app-${shortHash(APP_CSS)}.css`,
  }
  const page = renderPage(urls)

  const router = Router()
  router.get('/', securityHeaders, (_req, res) => {
    res.set('Cache-Control', 'no-cache').type('html').send(page)
  })

  const text =
    (type: string, body: string): RequestHandler =>
    (_req, res) => {
      res.set('Cache-Control', IMMUTABLE).type(type).send(body)
    }
  router.get(urls.appJs, securityHeaders, text('text/javascript', appJs))
  router.get(urls.appCss, securityHeaders, text('text/css', APP_CSS))

  // A fixed list of files, so nothing else under node_modules is reachable.
  for (const file of ['uppy.min.mjs', 'uppy.min.mjs.map', 'uppy.min.css']) {
    router.get(`${uppyBase}/${file}`, securityHeaders, (_req, res, next) => {
      res.sendFile(path.join(uppy.dir, file), { maxAge: ONE_YEAR_MS, immutable: true }, (error) => {
        // A client that leaves mid-file is no error of ours.
        if (error && !res.headersSent) next(error)
      })
    })
  }

  const listing: RequestHandler = (_req, res, next) => {
    res.set('Cache-Control', 'no-store')
    if (!config.UPLOAD_LIST) return void res.status(404).type('text/plain').send('The list of uploads is turned off (UPLOAD_LIST)\n')
    if (!store.listFinished) return void res.status(501).type('text/plain').send('This store cannot list uploads\n')
    next()
  }
  // Listings beyond the bound are refused at once rather than queued, so they never pile up behind a slow one.
  let listings = 0
  router.get(UPLOADS_PATH, securityHeaders, listing, authenticate, async (req, res) => {
    const query = pageQuery(req.query as Record<string, unknown>)
    if (!query) return void res.status(400).type('text/plain').send(`Bad limit or before: limit is 1 to ${LIST_LIMIT}\n`)
    if (!finished) return void res.status(501).type('text/plain').send('This store cannot list uploads\n')
    if (listings >= config.UPLOAD_LIST_CONCURRENCY) return void res.status(503).set('Retry-After', '1').type('text/plain').send('Too many listings at once\n')
    listings++
    try {
      // A principal (AUTH_MODE=jwt) sees its own uploads only; without authentication there is none.
      const page = await finished.page(query.limit, query.before, requestContext.current()?.principal)
      res.json({ uploads: page.entries.map((entry) => listed(entry, config.TUS_PATH)), next: page.next })
    } catch (error) {
      if (!(error instanceof CursorError)) throw error
      res.status(400).type('text/plain').send('Bad before: not a cursor of this list\n')
    } finally {
      listings--
    }
  })
  return router
}
