/**
 * The layering of shared/DESIGN.md §2 and STYLE.md, checked in `npm test` (`npm run layers`): `server/` knows
 * HTTP and sits on top; the floors below it (actions, rules, upstream, usage, login, state, stream, body) never
 * import it back; no import cycle anywhere, type-only imports included.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-lower-into-server',
      comment: 'Shared code lives on the floor below its users: a lower layer never imports from server/ (STYLE.md).',
      severity: 'error',
      from: { path: '^src/(actions|rules|upstream|usage|login|state|stream|body)/' },
      to: { path: '^src/server/' },
    },
    {
      name: 'no-circular',
      comment: 'A module graph without cycles reads top to bottom (type-only cycles included).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
