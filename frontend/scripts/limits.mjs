// Extracts each bounded option's range and default from the server's OpenAPI document into
// src/api/limits.json, so the form reads the API's own limits without bundling the document.
import { readFileSync, writeFileSync } from "node:fs";

const doc = JSON.parse(readFileSync("src/api/openapi.json", "utf8"));
const limits = {};
for (const [name, schema] of Object.entries(doc.components.schemas).sort(([a], [b]) => a.localeCompare(b))) {
  if (!/(Options|Expect)$/.test(name)) continue;
  for (const [prop, s] of Object.entries(schema.properties ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    if (s.minimum === undefined || s.maximum === undefined) continue;
    (limits[name] ??= {})[prop] = { minimum: s.minimum, maximum: s.maximum, ...(s.default !== undefined ? { default: s.default } : {}) };
  }
}
writeFileSync("src/api/limits.json", JSON.stringify(limits, null, 2) + "\n");
