// The layering rules test/architecture.test.ts checks; `npx depcruise server stores bench` prints the same.
const forbid = (name, comment, from, to) => ({ name, comment, severity: 'error', from: { path: from }, to: { path: to } })
const BETWEEN_HANDLERS = 'The tus handlers and the IETF-draft handlers share only the core, never each other.'

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    forbid('stores-not-server', 'A store is usable without the server: it takes its own settings, the server composes it.', '^stores/', '^server/'),
    forbid('tus-not-ietf', BETWEEN_HANDLERS, '^server/tus/', '^server/ietf/'),
    forbid('ietf-not-tus', BETWEEN_HANDLERS, '^server/ietf/', '^server/tus/'),
    forbid(
      'core-protocol-neutral',
      'The upload core knows no HTTP framework and no wire format: Express and the protocol handlers build on it, not it on them.',
      '^server/core/',
      ['^server/tus/', '^server/ietf/', '(^|/)node_modules/(@types/)?express(-serve-static-core)?/'],
    ),
    forbid('bench-not-test', 'The bench runs without the test tree; what both need lives outside test/.', '^bench/', '^test/'),
    {
      name: 'no-cycles',
      comment: 'No import cycles in the product code, type-only imports included.',
      severity: 'error',
      from: { path: '^(server|stores)/' },
      to: { path: '^(server|stores)/', circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|data|coverage|node_modules)/' },
    // Type-only imports count: a cycle through `import type` still ties two modules together.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
}
