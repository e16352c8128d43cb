// The layering rules test/architecture.test.ts checks; `npx depcruise server stores bench` prints the same.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'stores-not-server',
      comment: 'A store is usable without the server: it takes its own settings, the server composes it.',
      severity: 'error',
      from: { path: '^stores/' },
      to: { path: '^server/' },
    },
    {
      name: 'tus-not-ietf',
      comment: 'The tus handlers and the IETF-draft handlers share only the core, never each other.',
      severity: 'error',
      from: { path: '^server/tus/' },
      to: { path: '^server/ietf/' },
    },
    {
      name: 'ietf-not-tus',
      comment: 'The tus handlers and the IETF-draft handlers share only the core, never each other.',
      severity: 'error',
      from: { path: '^server/ietf/' },
      to: { path: '^server/tus/' },
    },
    {
      name: 'core-protocol-neutral',
      comment: 'The upload core knows no HTTP framework and no wire format: Express and the protocol handlers build on it, not it on them.',
      severity: 'error',
      from: { path: '^server/core/' },
      to: { path: ['^server/tus/', '^server/ietf/', '(^|/)node_modules/(@types/)?express(-serve-static-core)?/'] },
    },
    {
      name: 'bench-not-test',
      comment: 'The bench runs without the test tree; what both need lives outside test/.',
      severity: 'error',
      from: { path: '^bench/' },
      to: { path: '^test/' },
    },
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
