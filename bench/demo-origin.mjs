// `npm run demo-origin`: the overload lab's simulated origin on port 8788, for the README's curl
// walkthrough through `wrangler dev`. Same flags as bench/origin.mjs (--port, --concurrency, ...).
import { main } from "./origin.mjs";

await main(process.argv.slice(2), { port: 8788 });
