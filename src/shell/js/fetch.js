// Upstream fetches with a deadline on the response headers, in one call from
// wasm: the abort controller and the timer live here, so a request costs no
// wasm closures and no second Request built only to carry a signal. Once the
// headers are in, the deadline is off (a long answer may stream for as long
// as it needs); until then the fetch is aborted when it passes.

/**
 * @param {{fetch: Function} | null} target a service binding, or null for the internet
 * @param {Request | string} input
 * @param {RequestInit} init
 * @param {number} ms
 * @returns {Promise<Response>} rejects with 'timeout' or 'unreachable'
 */
export async function fetchWithin(target, input, init, ms) {
  const controller = new AbortController();
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    controller.abort();
  }, ms);
  init.signal = controller.signal;
  try {
    return await (target ? target.fetch(input, init) : fetch(input, init));
  } catch {
    throw late ? 'timeout' : 'unreachable';
  } finally {
    clearTimeout(timer);
  }
}
