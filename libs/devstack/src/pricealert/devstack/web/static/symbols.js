// The symbol field's suggestions (GET /symbols?q=) and the chosen symbol's current price (GET /symbols/{symbol}).

import { api } from "./api.js";
import { h, replace, when } from "./dom.js";

const UNAVAILABLE = "Prices unavailable right now.";

/** Fills `list` (a <datalist>) with the symbols matching what `input` holds, as the user types. */
export function suggest(input, list) {
  let timer = null;
  let asked = "";
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      if (q === asked) return;
      asked = q;
      try {
        const answer = await api("GET", `/symbols?${new URLSearchParams({ q, limit: "20" })}`);
        replace(list, answer.items.map((s) => h("option", { value: s.symbol })));
      } catch {
        replace(list);
      }
    }, 200);
  });
}

/** Shows `symbol`'s current price in `slot` (#current-price); "prices unavailable" when the API cannot say. */
export async function showPrice(symbol, slot) {
  const name = symbol.trim().toUpperCase();
  if (!name) {
    replace(slot, "Choose a symbol to see its current price.");
    slot.dataset.state = "none";
    return;
  }
  try {
    const view = await api("GET", `/symbols/${encodeURIComponent(name)}`);
    if (view.price) {
      replace(slot, `${view.symbol} now: `, h("strong", { class: "price" }, view.price), ` (${when(view.price_at)})`);
      slot.dataset.state = "price";
      slot.dataset.price = view.price;
    } else {
      replace(slot, `${view.symbol}: no recent price.`);
      slot.dataset.state = "stale";
    }
  } catch (error) {
    if (error.code === "unknown_symbol") {
      const matches = error.details?.close_matches || [];
      replace(slot, `Unknown symbol ${name}.${matches.length ? ` Did you mean ${matches.join(", ")}?` : ""}`);
      slot.dataset.state = "unknown";
    } else {
      replace(slot, UNAVAILABLE);
      slot.dataset.state = "unavailable";
    }
  }
}
