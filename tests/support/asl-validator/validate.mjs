// Validate state machine definitions with the npm asl-validator (JSON schemas, transitions,
// terminal states, paths and ARNs). Stdin: {"<name>": <definition>, ...}.
// Stdout: {"<name>": {"ok": bool, "errors": [str, ...]}, ...}.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const validator = createRequire(import.meta.url)("asl-validator");
const definitions = JSON.parse(readFileSync(0, "utf8"));
const out = {};
for (const [name, definition] of Object.entries(definitions)) {
  const { isValid, errors } = validator(definition, { checkPaths: true, checkArn: true });
  out[name] = { ok: isValid, errors: errors.map((e) => `${e["Error code"]}: ${e.Message}`) };
}
console.log(JSON.stringify(out));
