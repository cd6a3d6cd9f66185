import { describe, expect, it } from "vitest";
import { FIELDS, type Kind } from "./CheckOptions";
import LIMITS from "../api/limits.json";

describe("check option fields", () => {
  it("take every number's range from the API's own limits", () => {
    for (const kind of Object.keys(FIELDS) as Kind[]) {
      for (const f of FIELDS[kind].filter((f) => f.kind === "number")) {
        expect(f.min, `${kind} ${f.name}`).toBeTypeOf("number");
        expect(f.max, `${kind} ${f.name}`).toBeGreaterThan(f.min!);
      }
    }
    const count = FIELDS.ping.find((f) => f.name === "count")!;
    expect([count.min, count.max]).toEqual([LIMITS.PingOptions.count.minimum, LIMITS.PingOptions.count.maximum]);
    const timeout = FIELDS.http.find((f) => f.name === "timeout_ms")!;
    expect(timeout.placeholder).toBe(String(LIMITS.HttpOptions.timeout_ms.default));
  });
});
