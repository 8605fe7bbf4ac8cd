// Generates src/api/schema.d.ts from src/api/openapi.json (the manager's OpenAPI document,
// refreshed by the manager's openapi_snapshot test). `npm run api:types` runs it; the
// vitest suite calls `generateApiTypes` too and compares with the committed file, so the
// script and the check cannot disagree on options or formatting.
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";

export const documentPath = fileURLToPath(new URL("../src/api/openapi.json", import.meta.url));
export const schemaPath = fileURLToPath(new URL("../src/api/schema.d.ts", import.meta.url));

// Sorted keys keep the output independent of the document's key order.
export const options = { alphabetize: true, silent: true };

/** The TypeScript text for the document at `documentPath`. */
export async function generateApiTypes() {
  const document = JSON.parse(await readFile(documentPath, "utf8"));
  return COMMENT_HEADER + astToString(await openapiTS(document, options));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await writeFile(schemaPath, await generateApiTypes());
  console.log(`wrote ${schemaPath}`);
}
