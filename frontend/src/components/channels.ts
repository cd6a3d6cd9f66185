// Notification channels as form rows and back: one row per channel, a kind and its fields.

import type { Schemas } from "../api/client";

export type Channel = Schemas["Notify"];
export type ChannelKind = "webhook" | "slack" | "discord" | "teams" | "ntfy" | "pagerduty" | "email" | "telegram";
export type ChannelRow = { kind: ChannelKind; value: string; chat: string };

/** Every kind, with what its field holds (labels and placeholders of the form). */
export const KINDS: Record<ChannelKind, { label: string; field: string; placeholder: string }> = {
  webhook: { label: "Webhook (signed JSON)", field: "URL", placeholder: "https://alerts.example.com/netcheck" },
  slack: { label: "Slack", field: "Incoming webhook URL", placeholder: "https://hooks.slack.com/services/…" },
  discord: { label: "Discord", field: "Webhook URL", placeholder: "https://discord.com/api/webhooks/…" },
  teams: { label: "Microsoft Teams", field: "Workflow webhook URL", placeholder: "https://….logic.azure.com/workflows/…" },
  ntfy: { label: "ntfy", field: "Topic URL", placeholder: "https://ntfy.sh/my-alerts" },
  pagerduty: { label: "PagerDuty", field: "Routing key (Events API v2)", placeholder: "32 characters" },
  email: { label: "E-mail", field: "Addresses (comma-separated)", placeholder: "ops@example.com, oncall@example.com" },
  telegram: { label: "Telegram", field: "Bot token", placeholder: "123456:ABC-…" },
};

export function channelToRow(c: Channel): ChannelRow {
  if ("webhook" in c) return { kind: "webhook", value: c.webhook, chat: "" };
  if ("slack" in c) return { kind: "slack", value: c.slack, chat: "" };
  if ("discord" in c) return { kind: "discord", value: c.discord, chat: "" };
  if ("teams" in c) return { kind: "teams", value: c.teams, chat: "" };
  if ("ntfy" in c) return { kind: "ntfy", value: c.ntfy, chat: "" };
  if ("pagerduty" in c) return { kind: "pagerduty", value: c.pagerduty.routing_key, chat: "" };
  if ("email" in c) return { kind: "email", value: c.email.to.join(", "), chat: "" };
  return { kind: "telegram", value: c.telegram.bot_token, chat: c.telegram.chat_id };
}

/** Rows left empty are dropped. */
export function rowToChannel(r: ChannelRow): Channel | null {
  const v = r.value.trim();
  if (!v) return null;
  switch (r.kind) {
    case "webhook":
      return { webhook: v };
    case "slack":
      return { slack: v };
    case "discord":
      return { discord: v };
    case "teams":
      return { teams: v };
    case "ntfy":
      return { ntfy: v };
    case "pagerduty":
      return { pagerduty: { routing_key: v } };
    case "email":
      return { email: { to: v.split(",").map((a) => a.trim()).filter(Boolean) } };
    case "telegram":
      return { telegram: { bot_token: v, chat_id: r.chat.trim() } };
  }
}

/** One line for people: the kind and where it goes (never a token or key). */
export function describeChannel(c: Channel): string {
  const r = channelToRow(c);
  switch (r.kind) {
    case "pagerduty":
      return `PagerDuty …${r.value.slice(-4)}`;
    case "telegram":
      return `Telegram chat ${r.chat}`;
    case "email":
      return `E-mail ${r.value}`;
    default:
      return `${KINDS[r.kind].label} ${r.value}`;
  }
}
