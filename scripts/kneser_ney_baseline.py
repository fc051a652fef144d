"""Interpolated Kneser-Ney n-gram perplexity on the Brown token files (a yardstick for the bundled model).

Fits on train.bin and scores eval.bin of a directory written by scripts/export_brown_tokens.ts
(uint16 little-endian GPT-2 ids, documents each followed by <|endoftext|>), over the whole GPT-2
vocabulary (the order-1 distribution interpolates with uniform 1/vocab), one absolute discount D
for every order. Standard library only; about 1-3 minutes and 1-2 GB per order on 1 M tokens.

    /usr/bin/python3 scripts/kneser_ney_baseline.py tmp/train-data --order 3 [--discount 0.75]
"""
import argparse
import array
import collections
import math
import os

VOCAB = 50257


def read_ids(path):
    ids = array.array("H")
    with open(path, "rb") as handle:
        ids.frombytes(handle.read())
    if os.sys.byteorder != "little":
        ids.byteswap()
    return ids.tolist()


def fit(tokens, order):
    counts = collections.Counter()
    for i in range(len(tokens) - order + 1):
        counts[tuple(tokens[i : i + order])] += 1
    # Lower orders use continuation counts: distinct left contexts of each n-gram.
    tables = {order: counts}
    for n in range(order - 1, 0, -1):
        continuation = collections.Counter()
        for gram in tables[n + 1]:
            continuation[gram[1:]] += 1
        tables[n] = continuation
    stats = {}
    for n, table in tables.items():
        totals, types = collections.Counter(), collections.Counter()
        for gram, count in table.items():
            totals[gram[:-1]] += count
            types[gram[:-1]] += 1
        stats[n] = (table, totals, types)
    return stats


def probability(stats, history, word, n, discount):
    table, totals, types = stats[n]
    if n == 1:
        total = totals[()]
        return max(table.get((word,), 0) - discount, 0) / total + discount * types[()] / total / VOCAB
    lower = probability(stats, history, word, n - 1, discount)
    context = tuple(history[-(n - 1) :])
    total = totals.get(context, 0)
    if total == 0:
        return lower
    return max(table.get(context + (word,), 0) - discount, 0) / total + discount * types[context] / total * lower


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--discount", type=float, default=0.75)
    args = parser.parse_args()
    train = read_ids(os.path.join(args.data_dir, "train.bin"))
    evaluation = read_ids(os.path.join(args.data_dir, "eval.bin"))
    stats = fit(train, args.order)
    nll = 0.0
    for i in range(1, len(evaluation)):
        history = evaluation[max(0, i - args.order + 1) : i]
        nll -= math.log(probability(stats, history, evaluation[i], min(args.order, len(history) + 1), args.discount))
    scored = len(evaluation) - 1
    print(f"order {args.order}, discount {args.discount}: {scored} eval tokens, perplexity {math.exp(nll / scored):.1f}")


if __name__ == "__main__":
    main()
