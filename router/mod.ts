/**
 * The KVNDB router, to run inside your own program.
 *
 * @example
 * ```ts
 * import { Router } from "./mod.ts";
 * await using router = await Router.start({ hostname: "127.0.0.1", port: 0 });
 * console.log(router.stats().clients); // 0
 * ```
 *
 * @module
 */

export { Router, type RouterOptions } from "./router.ts";
export { type BalanceMode } from "./balancer.ts";
