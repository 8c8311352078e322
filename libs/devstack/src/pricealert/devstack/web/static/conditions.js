// What each condition takes, and an alert's definition in words.

export const CONDITIONS = [
  ["cross", "cross: reaches the target from either side"],
  ["above", "above: at or above the target"],
  ["below", "below: at or below the target"],
  ["pct_up", "pct_up: up a percent within a window"],
  ["pct_down", "pct_down: down a percent within a window"],
  ["pct_move", "pct_move: up or down a percent within a window"],
  ["enter_range", "enter_range: enters a price range"],
  ["exit_range", "exit_range: leaves a price range"],
];
export const WINDOWS = ["1m", "5m", "15m", "1h", "4h", "24h"];
export const STATUSES = ["active", "paused", "triggered", "expired", "deleted"];

/** The definition fields a condition takes. */
export function fieldsOf(condition) {
  if (condition.startsWith("pct_")) return ["percent", "window"];
  if (condition.endsWith("_range")) return ["low", "high"];
  return ["target_price"];
}

/** "above 65000", "pct_up 5 % in 1h", "enter_range 60000–70000". */
export function describe(alert) {
  const c = alert.condition;
  if (c.startsWith("pct_")) return `${c} ${alert.percent} % in ${alert.window}`;
  if (c.endsWith("_range")) return `${c} ${alert.low}–${alert.high}`;
  return `${c} ${alert.target_price}`;
}

/** "once" or "every time, cooldown 300 s". */
export function frequencyText(alert) {
  return alert.frequency === "every_time" ? `every time, cooldown ${alert.cooldown_s} s` : "once";
}
