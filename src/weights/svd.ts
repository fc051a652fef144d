/**
 * Truncated SVD of a row-major weight matrix A [rows, cols]: A ≈ left · right with
 * left = U_r·diag(S_r) [rows, rank] and right = V_rᵀ [rank, cols].
 *
 * Built on the shared low-rank helper (src/numeric/lowrank.ts): the Gram matrix of the
 * smaller side is eigen-decomposed in float64 (Householder + QL), so a 50257x128 embedding
 * costs one 128x128 eigenproblem. When rows < cols the matrix is transposed first, so the
 * Gram matrix is always min(rows, cols) square.
 */
import { SpgError } from "../errors.js";
import { factorsFor, gramSpectrum, rankForEnergy } from "../numeric/lowrank.js";

/** How many singular triplets to keep: a fixed rank, or the fewest reaching an energy share. */
export type RankSelection =
  | { kind: "rank"; rank: number }
  /** ceil(fraction · min(rows, cols)): "rank 128 of 2048" carried to a model of another width. */
  | { kind: "fraction"; fraction: number }
  | { kind: "energy"; threshold: number; maxRank?: number };

export interface TruncatedSvd {
  rows: number;
  cols: number;
  rank: number;
  /** Singular values of A, descending: all min(rows, cols) (exact), or the sampled leading ones (randomized). */
  singularValues: Float64Array;
  /** U_r·diag(S_r), [rows, rank] row-major. */
  left: Float64Array;
  /** V_rᵀ, [rank, cols] row-major. */
  right: Float64Array;
  /** Share of ‖A‖²_F the kept triplets hold (1 for an all-zero matrix). */
  energyKept: number;
}

function checkShape(matrix: Float32Array, rows: number, cols: number): void {
  if (
    !Number.isInteger(rows) ||
    !Number.isInteger(cols) ||
    rows < 1 ||
    cols < 1 ||
    matrix.length !== rows * cols
  ) {
    throw new SpgError("E_WEIGHTS_SHAPE", `matrix of ${matrix.length} values is not [${rows}, ${cols}]`, {
      fix: "pass the tensor's own shape from the checkpoint",
    });
  }
}

/** Rank the selection asks for, given the squared singular values (descending). */
export function selectRank(squaredSingularValues: Float64Array, selection: RankSelection): number {
  const full = squaredSingularValues.length;
  if (selection.kind === "rank") {
    if (!Number.isInteger(selection.rank) || selection.rank < 0) {
      throw new SpgError("E_WEIGHTS_RANK", `rank ${selection.rank} is not a non-negative integer`, {
        field: "lowRank.rank",
        fix: "give a whole number of singular triplets to keep",
      });
    }
    return Math.min(selection.rank, full);
  }
  if (selection.kind === "fraction") {
    if (!(selection.fraction > 0 && selection.fraction <= 1)) {
      throw new SpgError("E_WEIGHTS_RANK", `rank fraction ${selection.fraction} is not in (0, 1]`, {
        field: "lowRank.rankFraction",
        fix: "give the share of min(rows, cols) to keep, e.g. 0.0625",
      });
    }
    return Math.min(full, Math.ceil(selection.fraction * full));
  }
  const maxRank = Math.min(selection.maxRank ?? full, full);
  if (selection.threshold === 1) {
    // rankForEnergy compares a float sum against total·1; ask for every non-zero value instead.
    let rank = 0;
    while (rank < maxRank && squaredSingularValues[rank] > 0) rank++;
    return rank;
  }
  return rankForEnergy(squaredSingularValues, maxRank, selection.threshold).rank;
}

function transpose(matrix: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = matrix[r * cols + c];
  return out;
}

function energyShare(squared: Float64Array, rank: number): number {
  let total = 0;
  let kept = 0;
  for (let i = 0; i < squared.length; i++) {
    total += squared[i];
    if (i < rank) kept += squared[i];
  }
  return total === 0 ? 1 : kept / total;
}

export function truncatedSvd(
  matrix: Float32Array,
  rows: number,
  cols: number,
  selection: RankSelection,
): TruncatedSvd {
  checkShape(matrix, rows, cols);
  if (rows >= cols) {
    const { values, vectors } = gramSpectrum(matrix, rows, cols);
    const rank = selectRank(values, selection);
    // left = A·V_r equals U_r·diag(S_r) exactly.
    const { left, right } = factorsFor(matrix, rows, cols, vectors, rank);
    return {
      rows,
      cols,
      rank,
      singularValues: values.map(Math.sqrt),
      left,
      right,
      energyKept: energyShare(values, rank),
    };
  }
  // Aᵀ = V·S·Uᵀ: its factors are Lt = Aᵀ·U_r = V_r·S_r [cols, r] and Rt = U_rᵀ [r, rows].
  const transposed = transpose(matrix, rows, cols);
  const { values, vectors } = gramSpectrum(transposed, cols, rows);
  const rank = selectRank(values, selection);
  const t = factorsFor(transposed, cols, rows, vectors, rank);
  const singularValues = values.map(Math.sqrt);
  const left = new Float64Array(rows * rank);
  const right = new Float64Array(rank * cols);
  for (let k = 0; k < rank; k++) {
    const s = singularValues[k];
    for (let r = 0; r < rows; r++) left[r * rank + k] = t.right[k * rows + r] * s;
    // A zero singular value contributes nothing; its right row stays zero.
    if (s > 0) for (let c = 0; c < cols; c++) right[k * cols + c] = t.left[c * rank + k] / s;
  }
  return { rows, cols, rank, singularValues, left, right, energyKept: energyShare(values, rank) };
}
