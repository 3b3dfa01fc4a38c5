// Types the `env` and `exports` that tests import from "cloudflare:workers".
import type { Env as GuardEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends GuardEnv {}
    interface GlobalProps {
      mainModule: typeof import("../src/index");
      durableNamespaces: "TenantGuard";
    }
  }
}
