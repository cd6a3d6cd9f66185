import { describe, expect, it } from "vitest";
import { channelToRow, describeChannel, rowToChannel, type Channel } from "./channels";
import { move } from "../pages/StatusPagesPage";
import { barClass } from "../pages/StatusPublicPage";

describe("notification channels in the form", () => {
  const channels: Channel[] = [
    { webhook: "https://a.example/h" },
    { slack: "https://hooks.slack.com/services/x" },
    { discord: "https://discord.com/api/webhooks/1/x" },
    { teams: "https://x.logic.azure.com/workflows/1" },
    { ntfy: "https://ntfy.sh/alerts" },
    { pagerduty: { routing_key: "R0UT1NGKEY0123456789abcdefABCDEF" } },
    { email: { to: ["ops@example.com", "oncall@example.com"] } },
    { telegram: { bot_token: "123:abc", chat_id: "-100" } },
  ];
  it("every kind survives the form and back", () => {
    for (const c of channels) expect(rowToChannel(channelToRow(c))).toEqual(c);
  });
  it("empty rows are dropped and secrets are not described", () => {
    expect(rowToChannel({ kind: "slack", value: "  ", chat: "" })).toBeNull();
    expect(describeChannel(channels[5])).toBe("PagerDuty …CDEF");
    expect(describeChannel(channels[7])).toBe("Telegram chat -100");
  });
});

describe("status pages", () => {
  it("moves items within the list", () => {
    expect(move([1, 2, 3], 0, 1)).toEqual([2, 1, 3]);
    expect(move([1, 2, 3], 2, 1)).toEqual([1, 2, 3]);
    expect(move([1, 2, 3], 2, -2)).toEqual([3, 1, 2]);
  });
  it("colours a day by its uptime", () => {
    expect(barClass({ date: "2026-12-01", uptime: null, incidents: 0 })).toBe("none");
    expect(barClass({ date: "2026-12-01", uptime: 100, incidents: 0 })).toBe("ok");
    expect(barClass({ date: "2026-12-01", uptime: 97, incidents: 1 })).toBe("warn");
    expect(barClass({ date: "2026-12-01", uptime: 50, incidents: 1 })).toBe("bad");
  });
});
