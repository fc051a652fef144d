/**
 * The rules `spg prove` holds a config to beyond its schema (src/config/load.ts
 * semanticProblems and shapeProblems), applied again to the signed config.json with the model
 * shapes environment.json states: a producer who edits a config after the run (a snapkv window
 * wider than the attention rows the graph returned, an even pooling kernel, more reserved heads
 * than the model has, a context longer than its positions, a second baseline, a claim on the
 * baseline, two method names equal up to case) fails here, whatever its records say.
 */
import type { EnvironmentFile } from "../../bundle/types.js";
import { fieldName, semanticProblems, shapeProblems } from "../../config/load.js";
import type { RunConfig } from "../../config/types.js";
import { FailureCollector } from "../collect.js";
import { type Finding, pass } from "../types.js";

const CHECK = "config-rules" as const;

export function checkConfigRules(config: RunConfig, environment: EnvironmentFile): Finding[] {
  const { model } = environment;
  const problems = [
    ...semanticProblems(config),
    ...shapeProblems(config, {
      numHeads: model.heads,
      numLayers: model.layers,
      vocabSize: model.architecture?.vocabSize,
      maxPositions: model.architecture?.maxPositions,
    }),
  ];
  const failures = new FailureCollector(CHECK);
  for (const problem of problems) {
    failures.add(
      "E_CONFIG_RULE",
      `config.json ${fieldName(problem.pointer)} ${problem.message} (${problem.fix})`,
    );
  }
  if (failures.size > 0) return failures.findings();
  return [
    pass(
      CHECK,
      `config.json keeps every rule spg prove holds a config to (${config.methods.length} methods on the stated model shapes)`,
    ),
  ];
}
