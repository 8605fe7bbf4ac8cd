// The committed src/api/schema.d.ts is what openapi-typescript makes of the committed
// src/api/openapi.json, so the dashboard's API types follow the manager's document.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { generateApiTypes, schemaPath } from "../scripts/api-types.mjs";

describe("generated API types", () => {
  it("match the committed OpenAPI document", async () => {
    const committed = readFileSync(schemaPath, "utf8");
    const generated = await generateApiTypes();
    expect(
      generated === committed,
      "src/api/schema.d.ts is stale: run `npm run api:types`",
    ).toBe(true);
  });
});
