export interface PageUrls {
  /** The tus endpoint (TUS_PATH), relative to the page's origin. */
  endpoint: string
  /** The JSON list of finished uploads; empty when the list is turned off. */
  uploads: string
  /** AUTH_MODE: with 'jwt' the page asks for a token. */
  auth: string
  uppyModule: string
  uppyCss: string
  appJs: string
  appCss: string
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)

/** The page at `/`: the Uppy Dashboard and the list of finished uploads, filled in by the module script. */
export function renderPage(urls: PageUrls): string {
  const u = Object.fromEntries(Object.entries(urls).map(([k, v]) => [k, escapeHtml(v)])) as unknown as PageUrls
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tusgate: resumable uploads</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${u.uppyCss}">
<link rel="stylesheet" href="${u.appCss}">
<link rel="modulepreload" href="${u.uppyModule}">
<script type="module" src="${u.appJs}"></script>
</head>
<body>
<main id="app" data-endpoint="${u.endpoint}" data-uploads="${u.uploads}" data-auth="${u.auth}">
<h1>tusgate</h1>
<p class="lead">Resumable uploads over the tus protocol. Drop files below; uploads survive network drops,
server restarts and page reloads.</p>
<noscript><p class="notice">This page needs JavaScript. Any tus client can upload to <code>${u.endpoint}</code>.</p></noscript>
<p id="auth" hidden><label for="token">Access token</label>
<input id="token" type="password" autocomplete="off" spellcheck="false" placeholder="Paste the token you were given"></p>
<p id="interrupted" class="notice" hidden></p>
<div id="uppy"></div>
<section aria-labelledby="finished-title">
<h2 id="finished-title">Finished uploads</h2>
<p id="uploads-status">Loading&hellip;</p>
<ul id="uploads"></ul>
</section>
</main>
</body>
</html>
`
}
