/**
 * `spg model forward`: its --json logits equal Hugging Face's on the fixture checkpoints
 * (through the production checkpoint reader), and its helpers and errors.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { parseTokenIds, topLogits } from "../../src/commands/model/forward.js";
import { packageRoot } from "../../src/paths.js";
import { fixtureCase, fixtureDir, maxAbsDiff } from "../helpers/fixture-checkpoint.js";

const run = promisify(execFile);
const bin = join(packageRoot(), "bin", "run.js");

describe("spg model forward", () => {
  for (const [name, caseName] of [
    ["A", "full_len7"],
    ["B", "full_len6"],
  ] as const) {
    test(`--json on fixture ${name} prints HF's logits (${caseName})`, async () => {
      const reference = fixtureCase(name, caseName);
      const ids = reference.input_ids[0];
      const { stdout } = await run(process.execPath, [
        bin,
        "model",
        "forward",
        fixtureDir(name),
        "--ids",
        ids.join(","),
        "--json",
      ]);
      const parsed = JSON.parse(stdout) as { logits: number[][] };
      assert.deepEqual(Object.keys(parsed), ["logits"]);
      assert.equal(parsed.logits.length, ids.length);
      assert.ok(maxAbsDiff(parsed.logits.flat(), reference.logits!.data) <= 1e-4);
    });
  }

  test("human output lists the top-k per position; bad ids exit non-zero with E_FORWARD_IDS", async () => {
    const { stdout } = await run(process.execPath, [
      bin,
      "model",
      "forward",
      fixtureDir("B"),
      "--ids",
      "1,2",
      "--top-k",
      "3",
    ]);
    const rows = stdout.trim().split("\n").slice(1);
    assert.equal(rows.length, 2);
    assert.equal(rows[0].split("->")[1].split(",").length, 3);
    await assert.rejects(
      run(process.execPath, [bin, "model", "forward", fixtureDir("B"), "--ids", "1,x"]),
      (error: unknown) => {
        const failure = error as { code: number; stderr: string };
        assert.equal(failure.code, 2);
        assert.match(failure.stderr, /E_FORWARD_IDS/);
        return true;
      },
    );
  });

  test("parseTokenIds and topLogits", () => {
    assert.deepEqual(parseTokenIds("464, 3290,318"), [464, 3290, 318]);
    assert.throws(() => parseTokenIds("1,-2"), { code: "E_FORWARD_IDS" });
    assert.throws(() => parseTokenIds(""), { code: "E_FORWARD_IDS" });
    const row = Float32Array.from([0.5, 3, -1, 3, 2]);
    assert.deepEqual(topLogits(row, 3), [
      { id: 1, logit: 3 },
      { id: 3, logit: 3 },
      { id: 4, logit: 2 },
    ]);
  });
});
