// `make load`: the long version of tests/e2e/load.test.mjs (which `make test`
// runs short). Same test code, bigger numbers; any of them can be overridden
// from the environment:
//   MCPGATE_LOAD_STREAMS  concurrent SSE streams held open at once   (1000)
//   MCPGATE_LOAD_MIX      good + bad requests fired at saturation     (1000)
//   MCPGATE_LOAD_ROUNDS   rounds of both, on one gateway              (3)
//   MCPGATE_LOAD_DELTAS   text deltas per stream (≈ 350 bytes each)   (60)
// On the 2-core dev box 1000 streams + 1000 requests per round take ~25 s;
// from ~2000 at once wrangler dev's own proxy starts answering 503.

process.env.MCPGATE_LOAD_STREAMS ??= '1000';
process.env.MCPGATE_LOAD_MIX ??= '1000';
process.env.MCPGATE_LOAD_ROUNDS ??= '3';
process.env.MCPGATE_LOAD_DELTAS ??= '60';

await import('../e2e/load.test.mjs');
