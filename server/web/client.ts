// The web page's own script and style sheet, kept here as strings so that they ship inside the compiled
// server (dist/) with nothing to bundle or copy. The script is a plain ES module for today's browsers;
// it never uses template literals, so String.raw holds it verbatim. UPPY_MODULE is replaced by the URL
// of Uppy's ES module bundle when the router is made.

export const UPPY_MODULE_PLACEHOLDER = '__UPPY_MODULE__'

export const APP_JS = String.raw`import { Dashboard, Tus, Uppy } from '__UPPY_MODULE__'

const root = document.getElementById('app')
const endpoint = root.dataset.endpoint
const uploadsUrl = root.dataset.uploads
const list = document.getElementById('uploads')
const listStatus = document.getElementById('uploads-status')
const interrupted = document.getElementById('interrupted')
const tokenField = document.getElementById('token')

const MiB = 1024 * 1024

// With AUTH_MODE=jwt every request carries the token the user pasted; it lasts as long as the tab.
const TOKEN_KEY = 'tusgate-token'

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || ''
}

function authHeaders() {
  return token() ? { Authorization: 'Bearer ' + token() } : {}
}

if (root.dataset.auth === 'jwt') {
  document.getElementById('auth').hidden = false
  tokenField.value = token()
  tokenField.addEventListener('change', () => {
    sessionStorage.setItem(TOKEN_KEY, tokenField.value.trim())
    void refreshUploads()
  })
}

const uppy = new Uppy({ autoProceed: false })
  .use(Dashboard, {
    inline: true,
    target: '#uppy',
    width: '100%',
    height: 380,
    showProgressDetails: true,
    proudlyDisplayPoweredByUppy: false,
    note: 'An interrupted upload resumes where it stopped: add the same file again, even after a reload.',
  })
  .use(Tus, {
    endpoint,
    // Read at each upload, so a token pasted after the page loaded counts.
    headers: () => authHeaders(),
    // Each PATCH carries at most 5 MiB, so a dropped connection or a server restart costs little.
    chunkSize: 5 * MiB,
    retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
    // tus-js-client keeps each unfinished upload's URL in localStorage, keyed by the file, so adding the
    // same file again (after a reload, too) resumes it; once finished, the entry is dropped.
    removeFingerprintOnSuccess: true,
    limit: 4,
  })

uppy.on('upload-success', () => {
  void refreshUploads()
  showInterrupted()
})

function formatSize(bytes) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return (unit === 0 ? String(value) : value.toFixed(1)) + ' ' + units[unit]
}

function element(tag, className, text) {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

function uploadItem(upload) {
  const item = element('li')
  item.dataset.id = upload.id
  const link = element('a', 'name', upload.filename || upload.id)
  link.href = upload.url
  link.addEventListener('click', (event) => void downloadWithToken(event, upload))
  const size = element('span', 'size', formatSize(upload.size))
  size.title = upload.size + ' bytes'
  item.append(link, size)
  if (upload.createdAt) {
    const when = element('time', 'created', new Date(upload.createdAt).toLocaleString())
    when.dateTime = upload.createdAt
    item.append(when)
  }
  return item
}

// A link cannot send a token: with one, the download is fetched with it and saved from memory.
async function downloadWithToken(event, upload) {
  if (!token()) return
  event.preventDefault()
  const response = await fetch(upload.url, { headers: authHeaders() }).catch(() => undefined)
  if (!response || !response.ok) return showListStatus('The download failed' + (response ? ' (HTTP ' + response.status + ').' : '.'))
  const href = URL.createObjectURL(await response.blob())
  const save = element('a')
  save.href = href
  save.download = upload.filename || upload.id
  save.click()
  setTimeout(() => URL.revokeObjectURL(href), 60000)
}

function showListStatus(text) {
  listStatus.textContent = text
  listStatus.hidden = !text
}

// Only the answer to the latest request is shown, however the responses arrive.
let latest = 0

async function refreshUploads() {
  // With the list turned off (UPLOAD_LIST) the page has no URL for it, and asks nothing.
  if (!uploadsUrl) return showListStatus('The list of finished uploads is turned off on this server.')
  const ticket = ++latest
  let uploads
  try {
    const response = await fetch(uploadsUrl, { headers: { Accept: 'application/json', ...authHeaders() }, cache: 'no-store' })
    if (ticket !== latest) return
    if (response.status === 401) {
      list.replaceChildren()
      return showListStatus(token() ? 'This token is not accepted.' : 'Enter your access token to see your uploads.')
    }
    if (response.status === 501) return showListStatus('This store cannot list uploads.')
    if (response.status === 404) return showListStatus('The list of finished uploads is turned off on this server.')
    if (!response.ok) return showListStatus('The list of uploads is unavailable (HTTP ' + response.status + ').')
    uploads = (await response.json()).uploads
  } catch {
    if (ticket === latest) showListStatus('The list of uploads is unavailable.')
    return
  }
  if (ticket !== latest) return
  list.replaceChildren(...uploads.map(uploadItem))
  showListStatus(uploads.length === 0 ? 'No finished uploads yet.' : '')
  list.dataset.loaded = String(ticket)
}

/** Unfinished uploads of this browser to this endpoint, as tus-js-client keeps them in localStorage. */
function interruptedUploads() {
  const found = []
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i)
    if (!key || !key.startsWith('tus::')) continue
    try {
      const entry = JSON.parse(localStorage.getItem(key))
      const path = new URL(entry.uploadUrl, location.href).pathname
      if (path.startsWith(endpoint + '/')) found.push(entry)
    } catch {
      // not one of ours
    }
  }
  return found
}

function showInterrupted() {
  const entries = interruptedUploads()
  interrupted.hidden = entries.length === 0
  const names = entries.map((e) => ((e.metadata && e.metadata.filename) || 'a file') + ' (' + formatSize(e.size) + ')')
  interrupted.textContent =
    'Interrupted in this browser: ' + names.join(', ') + '. Add the same file again to resume where it stopped.'
}

showInterrupted()
void refreshUploads()
`

export const APP_CSS = `:root {
  color-scheme: light;
  --text: #1f2328;
  --muted: #59636e;
  --line: #d1d9e0;
  --accent: #1269cf;
  font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif;
  color: var(--text);
  background: #f6f8fa;
}
body {
  margin: 0;
}
main {
  max-width: 880px;
  margin: 0 auto;
  padding: 24px 16px 48px;
}
h1 {
  font-size: 1.6rem;
  margin: 0 0 4px;
}
h2 {
  font-size: 1.15rem;
  margin: 32px 0 8px;
}
.lead {
  color: var(--muted);
  margin: 0 0 16px;
}
.notice {
  background: #fff8c5;
  border: 1px solid #d4a72c66;
  border-radius: 6px;
  padding: 8px 12px;
}
#uploads {
  list-style: none;
  margin: 0;
  padding: 0;
  background: #fff;
  border: 1px solid var(--line);
  border-radius: 6px;
}
#uploads:empty {
  display: none;
}
#uploads li {
  display: flex;
  gap: 16px;
  align-items: baseline;
  padding: 8px 12px;
  border-top: 1px solid var(--line);
}
#uploads li:first-child {
  border-top: none;
}
#uploads .name {
  flex: 1;
  min-width: 0;
  overflow-wrap: anywhere;
  color: var(--accent);
}
#uploads .size,
#uploads .created {
  color: var(--muted);
  font-variant-numeric: tabular-nums;
  white-space: nowrap;
}
#uploads-status {
  color: var(--muted);
}
`
