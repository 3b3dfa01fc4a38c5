import { createApp } from "./app";
import type { Env } from "./env";

export { KeyRegistry } from "./key-registry";
export { OriginGuard } from "./origin-guard";
export { TenantGuard } from "./tenant-guard";

const app = createApp();

export default {
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),
} satisfies ExportedHandler<Env>;
