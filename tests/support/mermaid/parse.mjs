// Parse Mermaid text from stdin with Mermaid's own parser; print {"ok": bool, "error"?: str}.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

// Mermaid's parse path touches DOMPurify, which needs a window.
const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");

const text = readFileSync(0, "utf8");
try {
  const result = await mermaid.parse(text);
  console.log(JSON.stringify({ ok: true, type: result.diagramType }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error.message || error).slice(0, 2000) }));
}
