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
  return createPage(
    { "": PAGE, "index.html": PAGE, "start.js": START },
    path.dirname(require.resolve("swagger-ui-dist/package.json")),
    SWAGGER_ASSETS,
  );
}

const REDOC_PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Persistence Service API</title>
  </head>
  <body>
    <redoc spec-url="/openapi.json"></redoc>
    <script src="/redoc/redoc.standalone.js"></script>
  </body>
</html>
`;

/** The original design's second API page at `/redoc`: ReDoc's standalone bundle (the redoc package) reading `/openapi.json`, offline. */
export function createRedocPage(): (name: string) => Promise<Asset | undefined> {
  return createPage(
    { "": REDOC_PAGE, "index.html": REDOC_PAGE },
    path.join(path.dirname(require.resolve("redoc/package.json")), "bundles"),
    { "redoc.standalone.js": "text/javascript; charset=utf-8" },
  );
}

/** A page of fixed texts and a fixed list of files from one package folder. */
function createPage(texts: Record<string, string>, dist: string, files: Record<string, string>): (name: string) => Promise<Asset | undefined> {
  const cache = new Map<string, Promise<Asset>>();
  return async (name) => {
    const text = texts[name];
    if (text !== undefined) return { contentType: name.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/html; charset=utf-8", body: Buffer.from(text) };
    const contentType = Object.hasOwn(files, name) ? files[name] : undefined;
    if (contentType === undefined) return undefined;
    let asset = cache.get(name);
    if (!asset) {
      asset = readFile(path.join(dist, name)).then((body) => ({ contentType, body }));
      cache.set(name, asset);
    }
    return asset;
  };
}
