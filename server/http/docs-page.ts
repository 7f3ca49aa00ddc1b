import { readFile } from "node:fs/promises";
import path from "node:path";

/** The files of the API page: our own page and start-up script, plus Swagger UI's bundle (swagger-ui-dist). */
const SWAGGER_ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
};

const PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Persistence Service API</title>
    <link rel="stylesheet" href="/docs/swagger-ui.css">
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
  </head>
  <body>
    <div id="api"></div>
    <script src="/docs/swagger-ui-bundle.js"></script>
    <script src="/docs/start.js"></script>
  </body>
</html>
`;

const START = `window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#api", deepLinking: true, tryItOutEnabled: true });
});
`;

export interface Asset {
  readonly contentType: string;
  readonly body: Buffer;
}

/**
 * The browsable API page at `/docs`: Swagger UI reading `/openapi.json`. Only the listed files are
 * served (read once, then kept), so no request path ever reaches the file system.
 */
export function createDocsPage(): (name: string) => Promise<Asset | undefined> {
  const cache = new Map<string, Promise<Asset>>();
  const dist = path.dirname(require.resolve("swagger-ui-dist/package.json"));
  return async (name) => {
    if (name === "" || name === "index.html") return { contentType: "text/html; charset=utf-8", body: Buffer.from(PAGE) };
    if (name === "start.js") return { contentType: "text/javascript; charset=utf-8", body: Buffer.from(START) };
    const contentType = SWAGGER_ASSETS[name];
    if (contentType === undefined) return undefined;
    let asset = cache.get(name);
    if (!asset) {
      asset = readFile(path.join(dist, name)).then((body) => ({ contentType, body }));
      cache.set(name, asset);
    }
    return asset;
  };
}
