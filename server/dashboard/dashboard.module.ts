import { Code, ConnectError } from "@connectrpc/connect";
import { defineModule, type HttpRoute } from "../platform/module.js";
import { defaultDashboardDir, loadDashboardAssets, sendAsset } from "./dashboard.assets.js";

/**
 * The web dashboard at `/dashboard` (SPEC §8): the built page and its hashed assets, served from memory
 * with gzip and caching headers. The routes are open, as static files are; every figure the page shows
 * comes from the API, behind the caller's API key.
 */
export const dashboardModule = defineModule({
  name: "dashboard",
  services: [],
  needs: [],
  async start(ctx) {
    const dir = defaultDashboardDir();
    const assets = loadDashboardAssets(dir);
    if (!assets) ctx.logger.warn({ dir }, "the dashboard is not built (npm run build); /dashboard answers 503");
    const serve = (name: string): HttpRoute["handle"] => async (req, res) => {
      if (!assets) throw new ConnectError("the dashboard is not built: run npm run build", Code.Unavailable);
      const asset = assets.get(name);
      if (!asset) throw new ConnectError(`no dashboard file ${name}`, Code.NotFound);
      sendAsset(req, res, asset);
    };
    const http: HttpRoute[] = [
      { method: "GET", path: "/dashboard", handle: serve("index.html") },
      { method: "GET", path: "/dashboard/", handle: serve("index.html") },
      { method: "GET", path: "/dashboard/assets/{name}", handle: (req, res, params) => serve(`assets/${params.name ?? ""}`)(req, res, params) },
    ];
    return { services: [], http, exports: undefined };
  },
});
