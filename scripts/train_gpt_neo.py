#!/usr/bin/python3
"""Train the bundled GPT-Neo (Hugging Face GPTNeoForCausalLM layout) on the Brown train split.

Dev-time script for Debian's python3 + python3-torch (1.13) + numpy; no transformers, no
safetensors package: both the model and the safetensors reader/writer are written here from
the semantics in ../shared/fixtures/gpt-neo-hf/README.md.

Modes:
  --check-fixtures DIR     compare this forward with HF's reference logits (config-A, config-B)
  (default)                train; resumable from --run-dir/checkpoint.pt; stops at --max-steps
                           or at the wall-clock --deadline-utc, whichever comes first, and
                           exports --out (config.json + model.safetensors in F16)
  --export-only            export --out from --run-dir/checkpoint.pt (e.g. after a crash)
  --eval-only              load --out's exported weights and print the eval-split loss
  --dump-logits FILE       load --out's exported weights, write logits of a fixed token
                           sequence as JSON (for the ONNX runtime comparison test)

Data: tmp/train-data/{train,eval}.bin + manifest.json from
`node dist/scripts/export_brown_tokens.js`.
"""

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# safetensors (standard layout: u64 LE header length, JSON header, raw little-endian data)

SAFETENSORS_DTYPES = {
    "F32": (np.float32, torch.float32),
    "F16": (np.float16, torch.float16),
    "F64": (np.float64, torch.float64),
    "I64": (np.int64, torch.int64),
    "I32": (np.int32, torch.int32),
    "U8": (np.uint8, torch.uint8),
    "BOOL": (np.bool_, torch.bool),
}


def read_safetensors(path):
    with open(path, "rb") as handle:
        data = handle.read()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_length].decode("utf-8"))
    base = 8 + header_length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        raw = data[base + start : base + end]
        if entry["dtype"] == "BF16":
            as_u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            array = as_u16.view(np.float32)
        else:
            np_dtype = np.dtype(SAFETENSORS_DTYPES[entry["dtype"]][0]).newbyteorder("<")
            array = np.frombuffer(raw, dtype=np_dtype)
        tensors[name] = torch.from_numpy(array.reshape(entry["shape"]).copy())
    return tensors, header.get("__metadata__")


def write_safetensors(path, tensors, dtype_name):
    """Writes tensors (name -> torch tensor) sorted by name, all in one dtype, atomically."""
    np_dtype = None if dtype_name == "BF16" else np.dtype(SAFETENSORS_DTYPES[dtype_name][0]).newbyteorder("<")
    header = {"__metadata__": {"format": "pt"}}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu()
        if dtype_name == "BF16":
            # numpy has no bfloat16: take torch's rounding and write its bits.
            array = tensor.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2")
        else:
            array = tensor.numpy().astype(np_dtype)
        raw = array.tobytes(order="C")
        header[name] = {"dtype": dtype_name, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * ((8 - len(header_bytes) % 8) % 8)
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "wb") as handle:
        handle.write(struct.pack("<Q", len(header_bytes)))
        handle.write(header_bytes)
        for raw in chunks:
            handle.write(raw)
    os.replace(temporary, path)


# ---------------------------------------------------------------------------------------------
# GPT-Neo, parameter names as in transformers' GPTNeoForCausalLM


def expand_attention_types(attention_types):
    layers = []
    for pattern, repeat in attention_types:
        for _ in range(repeat):
            layers.extend(pattern)
    return layers


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


# transformers' ACT2FN names (activations.py, v4.36), written with torch.nn.functional where torch
# has the function and from the formula where it has not.
ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_python": lambda x: x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))),
    "gelu_10": lambda x: torch.clip(F.gelu(x), -10.0, 10.0),
    "gelu_new": gelu_new,
    "gelu_accurate": gelu_new,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x))),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "laplace": lambda x: 0.5 * (1.0 + torch.erf((x - 0.707107) / (0.282095 * math.sqrt(2.0)))),
    "leaky_relu": lambda x: F.leaky_relu(x),
    "linear": lambda x: x,
    "mish": lambda x: F.mish(x),
    "relu": lambda x: F.relu(x),
    "relu2": lambda x: torch.square(F.relu(x)),
    "relu6": lambda x: F.relu6(x),
    "sigmoid": lambda x: torch.sigmoid(x),
    "silu": lambda x: F.silu(x),
    "swish": lambda x: F.silu(x),
    "tanh": lambda x: torch.tanh(x),
}


class SelfAttention(nn.Module):
    def __init__(self, config, kind):
        super().__init__()
        hidden = config["hidden_size"]
        self.kind = kind
        self.num_heads = config["num_heads"]
        self.head_dim = hidden // self.num_heads
        self.window_size = config["window_size"]
        self.q_proj = nn.Linear(hidden, hidden, bias=False)
        self.k_proj = nn.Linear(hidden, hidden, bias=False)
        self.v_proj = nn.Linear(hidden, hidden, bias=False)
        self.out_proj = nn.Linear(hidden, hidden, bias=True)
        self.dropout = 0.0  # training only (set_dropout); HF's attention_dropout and resid_dropout

    def split(self, x):
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x, position_ids):
        q, k, v = self.split(self.q_proj(x)), self.split(self.k_proj(x)), self.split(self.v_proj(x))
        # GPT-Neo does not scale scores by 1/sqrt(head_dim).
        scores = torch.matmul(q.float(), k.float().transpose(-1, -2))
        distance = position_ids[:, None, :, None] - position_ids[:, None, None, :]
        allowed = distance >= 0
        if self.kind == "local":
            allowed = allowed & (distance < self.window_size)
        scores = torch.where(allowed, scores, torch.tensor(torch.finfo(scores.dtype).min, dtype=scores.dtype))
        probabilities = torch.softmax(scores, dim=-1).to(v.dtype)
        out = torch.matmul(F.dropout(probabilities, self.dropout, self.training), v)
        batch, _, seq, _ = out.shape
        out = out.permute(0, 2, 1, 3).reshape(batch, seq, self.num_heads * self.head_dim)
        return F.dropout(self.out_proj(out), self.dropout, self.training), probabilities


class AttentionWrapper(nn.Module):
    """HF nests the projections as attn.attention.*"""

    def __init__(self, config, kind):
        super().__init__()
        self.attention = SelfAttention(config, kind)


class Mlp(nn.Module):
    def __init__(self, config):
        super().__init__()
        hidden = config["hidden_size"]
        inner = config["intermediate_size"] if config.get("intermediate_size") is not None else 4 * hidden
        self.c_fc = nn.Linear(hidden, inner)
        self.c_proj = nn.Linear(inner, hidden)
        self.act = ACTIVATIONS[config.get("activation_function", "gelu_new")]
        self.dropout = 0.0  # training only (set_dropout); HF's resid_dropout

    def forward(self, x):
        return F.dropout(self.c_proj(self.act(self.c_fc(x))), self.dropout, self.training)


class Block(nn.Module):
    def __init__(self, config, kind):
        super().__init__()
        hidden = config["hidden_size"]
        eps = config["layer_norm_epsilon"]
        self.ln_1 = nn.LayerNorm(hidden, eps=eps)
        self.attn = AttentionWrapper(config, kind)
        self.ln_2 = nn.LayerNorm(hidden, eps=eps)
        self.mlp = Mlp(config)

    def forward(self, h, position_ids):
        attended, probabilities = self.attn.attention(self.ln_1(h), position_ids)
        h = h + attended
        h = h + self.mlp(self.ln_2(h))
        return h, probabilities


class Transformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        hidden = config["hidden_size"]
        self.wte = nn.Embedding(config["vocab_size"], hidden)
        self.wpe = nn.Embedding(config["max_position_embeddings"], hidden)
        kinds = expand_attention_types(config["attention_types"])
        assert len(kinds) == config["num_layers"], "attention_types must expand to num_layers entries"
        self.h = nn.ModuleList([Block(config, kind) for kind in kinds])
        self.ln_f = nn.LayerNorm(hidden, eps=config["layer_norm_epsilon"])


class GptNeoForCausalLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = Transformer(config)
        # HF's GPTNeoForCausalLM with tie_word_embeddings false: lm_head is its own [vocab, hidden] matrix.
        self.lm_head = (
            nn.Linear(config["hidden_size"], config["vocab_size"], bias=False)
            if config.get("tie_word_embeddings", True) is False
            else None
        )
        self.dropout = 0.0

    def set_dropout(self, p):
        """Dropout where HF's GPT-Neo has it (embeddings, attention weights, residual branches), in
        training mode only: a regulariser of the run, not part of the exported model."""
        for module in self.modules():
            if hasattr(module, "dropout"):
                module.dropout = p

    def hidden_states(self, input_ids, position_ids=None, want_attentions=False):
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1]).unsqueeze(0).expand_as(input_ids)
        t = self.transformer
        h = F.dropout(t.wte(input_ids) + t.wpe(position_ids), self.dropout, self.training)
        attentions = []
        for block in t.h:
            h, probabilities = block(h, position_ids)
            if want_attentions:
                attentions.append(probabilities)
        return t.ln_f(h), attentions

    def forward(self, input_ids, position_ids=None):
        h, _ = self.hidden_states(input_ids, position_ids)
        # Tied LM head: logits = ln_f(h) @ wte.T (untied: @ lm_head.T)
        return F.linear(h, self.transformer.wte.weight if self.lm_head is None else self.lm_head.weight)

    def load_hf_state(self, tensors):
        """Loads HF tensors; a tied model's lm_head.weight (if present) must equal wte; mask buffers are checked and ignored."""
        own = self.state_dict()
        loaded = set()
        for name, value in tensors.items():
            if name.endswith(".attn.attention.bias") or name.endswith(".attn.attention.masked_bias"):
                continue
            if name == "lm_head.weight" and self.lm_head is None:
                continue
            if name not in own:
                raise ValueError(f"unknown tensor {name}")
            if tuple(own[name].shape) != tuple(value.shape):
                raise ValueError(f"{name}: shape {tuple(value.shape)}, expected {tuple(own[name].shape)}")
            own[name].copy_(value.to(own[name].dtype))
            loaded.add(name)
        missing = sorted(set(own) - loaded)
        if missing:
            raise ValueError(f"missing tensors: {missing}")
        if self.lm_head is None and "lm_head.weight" in tensors and not torch.equal(tensors["lm_head.weight"].float(), own["transformer.wte.weight"].float()):
            raise ValueError("lm_head.weight differs from transformer.wte.weight (expected tied)")


def init_weights(model, generator, initializer_range):
    """HF GPT-Neo init: N(0, initializer_range) for Linear/Embedding weights, zero biases, LN = (1, 0)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                module.weight.normal_(0.0, initializer_range, generator=generator)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()


# ---------------------------------------------------------------------------------------------
# fixtures check


def tensor_of(entry):
    return torch.tensor(entry["data"], dtype=torch.float64).reshape(entry["shape"])


def find_input_ids(case):
    for key in ("input_ids", "ids", "inputIds"):
        if key in case:
            value = case[key]
            if isinstance(value, dict):
                return torch.tensor(value["data"], dtype=torch.long).reshape(value["shape"])
            ids = torch.tensor(value, dtype=torch.long)
            return ids if ids.dim() == 2 else ids.unsqueeze(0)
    raise KeyError(f"no input ids in case (keys: {sorted(case)})")


def check_fixtures(fixtures_dir, tolerance, report_path=None):
    worst_overall = 0.0
    report = {"fixtures": fixtures_dir, "tolerance": tolerance, "cases": [], "writer_identical": {}}
    for name in ("config-A", "config-B"):
        directory = os.path.join(fixtures_dir, name)
        with open(os.path.join(directory, "config.json")) as handle:
            config = json.load(handle)
        model = GptNeoForCausalLM(config).eval()
        fixture_weights = os.path.join(directory, "model.safetensors")
        tensors, metadata = read_safetensors(fixture_weights)
        model.load_hf_state(tensors)
        # The writer must reproduce the fixture file byte for byte (same layout as transformers' save).
        rewritten = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"spg-safetensors-check-{os.getpid()}")
        write_safetensors(rewritten, dict(model.state_dict()), "F32")
        with open(rewritten, "rb") as a, open(fixture_weights, "rb") as b:
            identical = a.read() == b.read()
        os.remove(rewritten)
        print(f"{name} safetensors writer reproduces the fixture file byte for byte: {identical}")
        report["writer_identical"][name] = identical
        if not identical:
            worst_overall = float("inf")
        with open(os.path.join(directory, "reference.json")) as handle:
            reference = json.load(handle)
        checked = 0
        for case in reference["cases"]:
            case_name = case["name"]
            if case["kind"] == "incremental":
                # This forward has no cache; compare its full forward over the same ids.
                case = {"input_ids": case["input_ids"], "logits": case["full_forward_logits_same_ids"]}
            elif case["kind"] not in ("full_forward", "output_attentions"):
                continue
            ids = find_input_ids(case)
            with torch.no_grad():
                logits = model(ids).double()
                _, attentions = model.hidden_states(ids, want_attentions=True)
            diff = (logits - tensor_of(case["logits"])).abs().max().item()
            line = f"{name} {case_name}: logits max|diff| = {diff:.3g}"
            if "attentions" in case:
                attention_diff = max(
                    (a.double() - tensor_of(r)).abs().max().item() for a, r in zip(attentions, case["attentions"])
                )
                line += f", attentions max|diff| = {attention_diff:.3g}"
                diff = max(diff, attention_diff)
            print(line)
            report["cases"].append({"config": name, "case": case_name, "max_abs_diff": diff})
            worst_overall = max(worst_overall, diff)
            checked += 1
        if checked == 0:
            raise SystemExit(f"{name}: no full_len / attentions cases found")
    ok = worst_overall <= tolerance
    if report_path:
        report.update({"worst_max_abs_diff": worst_overall, "ok": ok, "torch": torch.__version__})
        with open(report_path, "w") as handle:
            json.dump(report, handle, indent=1)
            handle.write("\n")
    print(f"fixtures: worst max|diff| = {worst_overall:.3g} (tolerance {tolerance}) -> {'OK' if ok else 'FAIL'}")
    return ok


# ---------------------------------------------------------------------------------------------
# training

MODEL_CONFIG = {
    "activation_function": "gelu_new",
    "architectures": ["GPTNeoForCausalLM"],
    "attention_dropout": 0.0,
    "embed_dropout": 0.0,
    "resid_dropout": 0.0,
    "classifier_dropout": 0.1,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05,
    "model_type": "gpt_neo",
    "use_cache": True,
}


def build_config(args):
    config = dict(MODEL_CONFIG)
    attention_types = json.loads(args.attention_types)
    config.update(
        {
            "vocab_size": args.vocab_size,
            "hidden_size": args.hidden_size,
            "num_layers": args.num_layers,
            "num_heads": args.num_heads,
            "intermediate_size": args.intermediate_size,
            "window_size": args.window_size,
            "max_position_embeddings": args.max_positions,
            "attention_types": attention_types,
            "attention_layers": expand_attention_types(attention_types),
            "bos_token_id": args.vocab_size - 1,
            "eos_token_id": args.vocab_size - 1,
            "torch_dtype": "float16",
        }
    )
    return config


TRAINING_FLAGS = ("data_dir", "run_dir", "out", "seed", "threads", "vocab_size", "hidden_size", "num_layers",
                  "num_heads", "intermediate_size", "window_size", "max_positions", "attention_types",
                  "tokens_per_step", "seq_lengths", "max_steps", "schedule_start", "lr", "min_lr_ratio",
                  "init_weights", "output_vocab", "sampled_negatives", "dropout",
                  "warmup_steps", "weight_decay", "grad_clip", "log_every", "checkpoint_every", "init_from",
                  "stop_at_step", "deadline_utc", "grow")


def command_from_args(train_args):
    """An explicit command line for a run's recorded arguments (for runs that did not record their argv)."""
    parts = ["scripts/train_gpt_neo.py"]
    for name in TRAINING_FLAGS:
        value = train_args.get(name)
        if value is None or value is False:
            continue
        if value is True:
            parts.append(f"--{name.replace('_', '-')}")
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        parts.append(f"--{name.replace('_', '-')} '{text}'" if any(c in text for c in " []\"'") else f"--{name.replace('_', '-')} {text}")
    return " ".join(parts)


def build_training_info(train_args, step, stop_reason, log, manifest, train_tokens):
    """What training.json records; train_args is the training run's argparse namespace as a dict."""
    return {
        "seed": train_args["seed"],
        "steps": step,
        "max_steps": train_args["max_steps"],
        "stop_reason": stop_reason,
        "tokens_per_step": train_args["tokens_per_step"],
        "seq_lengths": [int(x) for x in train_args["seq_lengths"].split(",")],
        "optimizer": {"name": "AdamW", "lr": train_args["lr"], "betas": [0.9, 0.95],
                      "weight_decay": train_args["weight_decay"], "warmup_steps": train_args["warmup_steps"],
                      "schedule": "cosine", "min_lr_ratio": train_args["min_lr_ratio"],
                      "grad_clip": train_args["grad_clip"]},
        "data": {key: {k: v for k, v in value.items() if k != "documentIds"}
                 for key, value in manifest["splits"].items() if key == "train"},
        "train_tokens": train_tokens,
        "loss_curve": log,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "command": train_args.get("command", " ".join(sys.argv)),
    }


def load_tokens(data_dir, split):
    with open(os.path.join(data_dir, "manifest.json")) as handle:
        manifest = json.load(handle)
    entry = manifest["splits"][split]
    path = os.path.join(data_dir, entry["file"])
    with open(path, "rb") as handle:
        raw = handle.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != entry["fileSha256"]:
        raise SystemExit(f"{path}: sha256 {digest} does not match manifest {entry['fileSha256']}")
    tokens = torch.from_numpy(np.frombuffer(raw, dtype="<u2").astype(np.int64))
    return tokens, manifest


def batch_shape(step, tokens_per_step, seq_lengths):
    """Cycles through the sequence lengths; the batch keeps tokens_per_step tokens."""
    seq = seq_lengths[step % len(seq_lengths)]
    return max(1, tokens_per_step // seq), seq


def sample_batch(tokens, step, seed, batch, seq):
    """Random windows of seq+1 tokens, drawn from a generator keyed by (seed, step): resumable exactly."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    starts = torch.randint(0, tokens.numel() - seq - 1, (batch,), generator=generator)
    windows = torch.stack([tokens[s : s + seq + 1] for s in starts.tolist()])
    return windows[:, :-1], windows[:, 1:]


def learning_rate(step, args):
    """Linear warmup then cosine decay, over steps [schedule_start, max_steps) (a second phase restarts it)."""
    step -= args.schedule_start
    span = args.max_steps - args.schedule_start
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    progress = min(1.0, (step - args.warmup_steps) / max(1, span - args.warmup_steps))
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


class SeenVocabulary:
    """The output vocabulary restricted to the token ids that occur in the train split.

    Rows of the tied embedding for ids that never occur are set to zero and stay zero (they get no
    gradient: never an input, never a scored output, and decoupled weight decay keeps 0 at 0). Their
    logits are then exactly h . 0 = 0, so the full softmax over all vocab_size ids equals a softmax
    over the seen ids plus one constant term log(unseen count): this loss IS the full-vocabulary
    cross-entropy of the exported model, at a fraction of the LM head's cost.
    """

    def __init__(self, train_tokens, vocab_size):
        self.ids = torch.unique(train_tokens)
        self.unseen_count = vocab_size - self.ids.numel()
        self.unseen_mask = torch.ones(vocab_size, dtype=torch.bool)
        self.unseen_mask[self.ids] = False
        self.position = torch.full((vocab_size,), -1, dtype=torch.long)
        self.position[self.ids] = torch.arange(self.ids.numel())

    def zero_unseen_rows(self, model):
        with torch.no_grad():
            model.transformer.wte.weight[self.unseen_mask] = 0.0

    def unseen_rows_are_zero(self, model):
        return bool((model.transformer.wte.weight[self.unseen_mask] == 0).all().item())

    def loss(self, model, inputs, targets):
        h, _ = model.hidden_states(inputs)
        h = h.reshape(-1, h.shape[-1])
        logits = F.linear(h, model.transformer.wte.weight.index_select(0, self.ids))
        log_normalizer = torch.logsumexp(logits, dim=1)
        if self.unseen_count > 0:
            log_normalizer = torch.logaddexp(log_normalizer, torch.tensor(math.log(self.unseen_count)))
        target_logits = logits.gather(1, self.position[targets.reshape(-1)].unsqueeze(1)).squeeze(1)
        return (log_normalizer - target_logits).mean()


class SampledVocabulary(SeenVocabulary):
    """Sampled softmax over the seen ids, for cheaper steps: the LM head is most of a step's cost.

    Each step scores the batch's own target ids (always) plus the distinct ids of `negatives` draws
    (with replacement) from the seen ids' unigram^0.75 distribution, keyed by (seed, step). The
    normaliser over the ids left out is estimated Horvitz-Thompson style: a drawn id j stands for
    exp(s_j) / P(j drawn), P(j drawn) = 1 - (1 - q_j)^negatives, so its logit gets -log P(j drawn).
    Unseen ids still contribute exactly unseen_count * exp(0). The estimate of the normaliser is
    unbiased, its log is not: this loss is not the model's cross-entropy, which is why every logged
    step also reports the exact loss of the same batch and a run ends with an exact phase.
    """

    def __init__(self, train_tokens, vocab_size, negatives, seed):
        super().__init__(train_tokens, vocab_size)
        counts = torch.bincount(train_tokens, minlength=vocab_size)[self.ids].double()
        weights = counts.pow(0.75)
        self.proposal = (weights / weights.sum()).float()
        self.log_inclusion = torch.log1p(-torch.pow(1.0 - weights / weights.sum(), negatives)).float()
        self.negatives = negatives
        self.seed = seed

    def sampled_loss(self, model, inputs, targets, step):
        h, _ = model.hidden_states(inputs)
        h = h.reshape(-1, h.shape[-1])
        target_positions = self.position[targets.reshape(-1)]
        in_batch = torch.unique(target_positions)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step + 7)
        drawn = torch.unique(torch.multinomial(self.proposal, self.negatives, replacement=True, generator=generator))
        outside_batch = torch.ones(self.ids.numel(), dtype=torch.bool)
        outside_batch[in_batch] = False
        drawn = drawn[outside_batch[drawn]]
        candidates = torch.cat([in_batch, drawn])
        correction = torch.cat([torch.zeros(in_batch.numel()), -self.log_inclusion[drawn]])
        weight = model.transformer.wte.weight.index_select(0, self.ids.index_select(0, candidates))
        logits = F.linear(h, weight) + correction
        log_normalizer = torch.logsumexp(logits, dim=1)
        if self.unseen_count > 0:
            log_normalizer = torch.logaddexp(log_normalizer, torch.tensor(math.log(self.unseen_count)))
        slot = torch.full((self.ids.numel(),), -1, dtype=torch.long)
        slot[in_batch] = torch.arange(in_batch.numel())
        target_logits = logits.gather(1, slot[target_positions].unsqueeze(1)).squeeze(1)
        return (log_normalizer - target_logits).mean(), candidates.numel()


def full_vocabulary_loss(model, inputs, targets):
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def load_init_weights(model, directory):
    """Initial weights from an exported checkpoint (config.json + model.safetensors) of the same shapes."""
    path = os.path.join(directory, "model.safetensors")
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    tensors, _ = read_safetensors(path)
    model.load_hf_state({name: value.float() for name, value in tensors.items()})
    with open(os.path.join(directory, "config.json")) as handle:
        source_config = json.load(handle)
    return {"directory": directory, "model_sha256": digest,
            "config": {key: source_config.get(key) for key in ("hidden_size", "num_layers", "num_heads", "window_size")}}


def make_optimizer(model, args):
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (decay if parameter.dim() >= 2 else no_decay).append(parameter)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
        eps=1e-8,
    )


def save_checkpoint(path, model, optimizer, step, log, args, config, previous_phase=None, initial_weights=None):
    temporary = f"{path}.tmp-{os.getpid()}"
    torch.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "log": log,
         "args": vars(args), "config": config, "previous_phase": previous_phase,
         "initial_weights": initial_weights},
        temporary,
    )
    os.replace(temporary, path)


def export_model(out_dir, model, config, training_info):
    os.makedirs(out_dir, exist_ok=True)
    tensors = {name: value for name, value in model.state_dict().items()}
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, "F16")
    temporary = os.path.join(out_dir, f"config.json.tmp-{os.getpid()}")
    with open(temporary, "w") as handle:
        json.dump(config, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(temporary, os.path.join(out_dir, "config.json"))
    temporary = os.path.join(out_dir, f"training.json.tmp-{os.getpid()}")
    with open(temporary, "w") as handle:
        json.dump(training_info, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(temporary, os.path.join(out_dir, "training.json"))


GROWN_CONFIG_KEYS = ("num_layers", "attention_types", "attention_layers")


def grow_layers(init_state, config, model, args):
    """Loads a checkpoint with fewer layers into a deeper model. Each group of the old layers (one period
    of its attention pattern) keeps its weights and is followed by new groups of the same pattern whose
    output projections (attention out_proj, MLP c_proj) start at zero: each new block adds nothing to
    the residual stream, so the grown model computes what the checkpoint did, and training moves on
    from there. The old parameters keep their AdamW moments; the new ones start fresh."""
    old_config = init_state["config"]
    differing = sorted(key for key in set(old_config) | set(config) if old_config.get(key) != config.get(key))
    if any(key not in GROWN_CONFIG_KEYS for key in differing):
        raise SystemExit(f"--grow: {args.init_from} differs in {differing}; only {list(GROWN_CONFIG_KEYS)} may change")
    old_kinds, new_kinds = old_config["attention_layers"], config["attention_layers"]
    period = len(old_config["attention_types"][0][0])
    if len(old_config["attention_types"]) != 1 or config["attention_types"][0][0] != old_config["attention_types"][0][0] \
            or len(config["attention_types"]) != 1:
        raise SystemExit("--grow: both models must repeat one and the same attention pattern")
    if len(new_kinds) % len(old_kinds) != 0 or len(new_kinds) <= len(old_kinds):
        raise SystemExit(f"--grow: {len(new_kinds)} layers is not a multiple (> 1) of the checkpoint's {len(old_kinds)}")
    factor = len(new_kinds) // len(old_kinds)
    source_of = []  # new layer index -> old layer index, or None for a new layer
    for group in range(len(old_kinds) // period):
        source_of.extend(group * period + offset for offset in range(period))
        source_of.extend([None] * (period * (factor - 1)))
    old_model = GptNeoForCausalLM(old_config)
    old_model.load_state_dict(init_state["model"])
    old_names = [name for name, _ in named_parameters_in_optimizer_order(old_model)]
    old_optimizer_state = init_state["optimizer"]["state"]
    state = model.state_dict()
    old_state = init_state["model"]

    def old_name_of(name):
        if not name.startswith("transformer.h."):
            return name
        index, rest = name[len("transformer.h."):].split(".", 1)
        source = source_of[int(index)]
        return None if source is None else f"transformer.h.{source}.{rest}"

    with torch.no_grad():
        for name in state:
            source = old_name_of(name)
            if source is not None:
                state[name].copy_(old_state[source])
            elif name.endswith(("attn.attention.out_proj.weight", "attn.attention.out_proj.bias",
                                "mlp.c_proj.weight", "mlp.c_proj.bias")):
                state[name].zero_()
    model.load_state_dict(state)
    optimizer_state = {}
    for name, _ in named_parameters_in_optimizer_order(model):
        source = old_name_of(name)
        if source is not None:
            moments = old_optimizer_state.get(old_names.index(source))
            if moments is not None:
                optimizer_state[name] = {key: value.clone() for key, value in moments.items()}
    new_layers = [index for index, source in enumerate(source_of) if source is None]
    print(f"grown from {len(old_kinds)} to {len(new_kinds)} layers; new layers {new_layers} start as identities", flush=True)
    return {"record": {"from_layers": len(old_kinds), "to_layers": len(new_kinds), "new_layers": new_layers,
                       "source_of_layer": source_of},
            "optimizer_state": optimizer_state}


def named_parameters_in_optimizer_order(model):
    """make_optimizer's order: the decayed (matrix) parameters, then the others."""
    named = list(model.named_parameters())
    return [item for item in named if item[1].dim() >= 2] + [item for item in named if item[1].dim() < 2]


def deadline_from(text):
    if not text:
        return None
    hours, minutes = (int(part) for part in text.split(":"))
    now = dt.datetime.now(dt.timezone.utc)
    deadline = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    if deadline <= now:
        # A session that crosses midnight names tomorrow's time: the next HH:MM, within 24 hours.
        deadline += dt.timedelta(days=1)
    return deadline.timestamp()


def train(args):
    torch.manual_seed(args.seed)
    config = build_config(args)
    train_tokens, manifest = load_tokens(args.data_dir, "train")
    seq_lengths = [int(x) for x in args.seq_lengths.split(",")]
    if max(seq_lengths) > config["max_position_embeddings"]:
        raise SystemExit("a sequence length exceeds max_position_embeddings")
    model = GptNeoForCausalLM(config)
    init_weights(model, torch.Generator().manual_seed(args.seed), config["initializer_range"])
    initial_weights = None
    if args.init_weights:
        initial_weights = load_init_weights(model, args.init_weights)
    if args.output_vocab == "sampled":
        seen = SampledVocabulary(train_tokens, config["vocab_size"], args.sampled_negatives, args.seed)
    else:
        seen = SeenVocabulary(train_tokens, config["vocab_size"]) if args.output_vocab == "seen" else None
    if seen is not None:
        seen.zero_unseen_rows(model)
    optimizer = make_optimizer(model, args)
    os.makedirs(args.run_dir, exist_ok=True)
    checkpoint_path = os.path.join(args.run_dir, "checkpoint.pt")
    log = []
    step = 0
    previous_phase = None
    if args.init_from:
        # A second phase: start from another run's checkpoint (weights, optimizer, step, loss log).
        with open(args.init_from, "rb") as handle:
            init_bytes = handle.read()
        init_state = torch.load(args.init_from)
        grown = None
        if args.grow:
            grown = grow_layers(init_state, config, model, args)
        elif init_state["config"] != config:
            raise SystemExit(f"{args.init_from}: saved with a different model config (add --grow to add layers)")
        if init_state["step"] != args.schedule_start:
            raise SystemExit(f"{args.init_from} is at step {init_state['step']}; pass --schedule-start {init_state['step']}")
        previous_args = dict(init_state["args"])
        # The whole lineage, so the last phase's training.json names every earlier phase.
        previous_phase = {
            "checkpoint_sha256": hashlib.sha256(init_bytes).hexdigest(),
            "steps": init_state["step"],
            "command": previous_args.get("command") or command_from_args(previous_args),
            "args": previous_args,
            "previous_phase": init_state.get("previous_phase"),
            "initial_weights": init_state.get("initial_weights"),
        }
        if grown is None:
            model.load_state_dict(init_state["model"])
            optimizer.load_state_dict(init_state["optimizer"])
        else:
            previous_phase["grown"] = grown["record"]
            for name, state in grown["optimizer_state"].items():
                optimizer.state[dict(model.named_parameters())[name]] = state
        step, log = init_state["step"], init_state["log"]
        print(f"phase 2 from {args.init_from} at step {step}", flush=True)
    if os.path.exists(checkpoint_path):
        state = torch.load(checkpoint_path)
        if state["config"] != config:
            raise SystemExit(f"{checkpoint_path}: saved with a different model config")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, log = state["step"], state["log"]
        previous_phase = state.get("previous_phase", previous_phase)
        initial_weights = state.get("initial_weights", initial_weights)
        print(f"resumed from {checkpoint_path} at step {step}", flush=True)
    if seen is not None:
        if not seen.unseen_rows_are_zero(model):
            raise SystemExit("--output-vocab seen: the embedding rows of ids unseen in training are not zero")
        # The restricted loss must equal the full-vocabulary cross-entropy (see SeenVocabulary).
        probe_inputs, probe_targets = sample_batch(train_tokens, step, args.seed + 1, 2, 64)
        model.eval()
        with torch.no_grad():
            restricted, full = seen.loss(model, probe_inputs, probe_targets).item(), full_vocabulary_loss(model, probe_inputs, probe_targets).item()
        if abs(restricted - full) > 1e-4 * max(1.0, abs(full)):
            raise SystemExit(f"restricted-vocabulary loss {restricted} differs from the full loss {full}")
        print(f"output vocabulary: {seen.ids.numel()} ids seen in train, {seen.unseen_count} unseen (rows held at 0); "
              f"probe loss restricted {restricted:.6f} = full {full:.6f}", flush=True)
    deadline = deadline_from(args.deadline_utc)
    stop_reason = "max-steps"
    model.set_dropout(args.dropout)
    model.train()
    started = time.time()
    window_loss, window_tokens, window_started = 0.0, 0, time.time()
    window_scored, window_steps = 0, 0
    last_step = args.max_steps if args.stop_at_step is None else min(args.max_steps, args.stop_at_step)
    if last_step < args.max_steps:
        stop_reason = f"stop-at-step {last_step}"
    while step < last_step:
        if deadline is not None and time.time() + args.deadline_margin_s >= deadline:
            stop_reason = f"deadline {args.deadline_utc} UTC"
            break
        batch, seq = batch_shape(step, args.tokens_per_step, seq_lengths)
        inputs, targets = sample_batch(train_tokens, step, args.seed, batch, seq)
        lr = learning_rate(step, args)
        for group in optimizer.param_groups:
            group["lr"] = lr
        scored_ids = None
        if isinstance(seen, SampledVocabulary):
            loss, scored_ids = seen.sampled_loss(model, inputs, targets, step)
        else:
            loss = seen.loss(model, inputs, targets) if seen is not None else full_vocabulary_loss(model, inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip).item()
        optimizer.step()
        step += 1
        window_loss += loss.item() * targets.numel()
        window_tokens += targets.numel()
        if scored_ids is not None:
            window_scored += scored_ids
            window_steps += 1
        if step % args.log_every == 0 or step == args.max_steps:
            elapsed = time.time() - window_started
            entry = {
                "step": step,
                "tokens_seen": step * batch * seq,
                "loss": window_loss / window_tokens,
                "lr": lr,
                "grad_norm": grad_norm,
                "seq": seq,
                "tokens_per_s": window_tokens / elapsed,
                "elapsed_s": time.time() - started,
            }
            if scored_ids is not None:
                # The sampled loss is not the cross-entropy: log the exact loss of this step's batch too
                # (after the update, so it is the loss the saved weights have on it).
                # "loss" stays the exact cross-entropy (of this one batch); "sampled_loss" is the window's mean.
                entry["sampled_loss"] = entry["loss"]
                model.eval()
                with torch.no_grad():
                    entry["loss"] = seen.loss(model, inputs, targets).item()
                model.train()
                entry["scored_ids_mean"] = window_scored / window_steps
            log.append(entry)
            print(json.dumps(entry), flush=True)
            window_loss, window_tokens, window_started = 0.0, 0, time.time()
            window_scored, window_steps = 0, 0
        if step % args.checkpoint_every == 0:
            save_checkpoint(checkpoint_path, model, optimizer, step, log, args, config, previous_phase, initial_weights)
    save_checkpoint(checkpoint_path, model, optimizer, step, log, args, config, previous_phase, initial_weights)
    with open(os.path.join(args.run_dir, "loss.json"), "w") as handle:
        json.dump(log, handle, indent=1)
    training_info = build_training_info(vars(args), step, stop_reason, log, manifest, int(train_tokens.numel()))
    training_info["previous_phase"] = previous_phase
    training_info["initial_weights"] = initial_weights
    if seen is not None:
        if not seen.unseen_rows_are_zero(model):
            raise SystemExit("--output-vocab seen: unseen rows drifted from zero; not exporting")
        training_info["output_vocabulary"] = {"mode": args.output_vocab, "seen_ids": int(seen.ids.numel()),
                                              "unseen_ids_held_at_zero": int(seen.unseen_count)}
        if isinstance(seen, SampledVocabulary):
            training_info["output_vocabulary"]["sampled_negatives"] = args.sampled_negatives
    export_model(args.out, model, config, training_info)
    print(f"stopped at step {step} ({stop_reason}); exported {args.out}", flush=True)


def export_from_checkpoint(args):
    state = torch.load(os.path.join(args.run_dir, "checkpoint.pt"))
    model = GptNeoForCausalLM(state["config"])
    model.load_state_dict(state["model"])
    train_args = dict(state["args"])
    train_args.setdefault("command", "(not recorded in this checkpoint)")
    train_tokens, manifest = load_tokens(train_args["data_dir"], "train")
    info = build_training_info(train_args, state["step"], "exported from checkpoint by --export-only",
                               state["log"], manifest, int(train_tokens.numel()))
    export_model(args.out, model, state["config"], info)
    print(f"exported step {state['step']} to {args.out}")


def load_exported(out_dir):
    with open(os.path.join(out_dir, "config.json")) as handle:
        config = json.load(handle)
    model = GptNeoForCausalLM(config).eval()
    tensors, _ = read_safetensors(os.path.join(out_dir, "model.safetensors"))
    model.load_hf_state({name: value.float() for name, value in tensors.items()})
    return model, config


def evaluate(args):
    model, config = load_exported(args.out)
    tokens, _ = load_tokens(args.data_dir, "eval")
    seq = args.eval_seq
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, tokens.numel() - 1, seq):
            window = tokens[start : start + seq + 1]
            if window.numel() < 2:
                break
            logits = model(window[:-1].unsqueeze(0))
            total += F.cross_entropy(logits[0], window[1:], reduction="sum").item()
            count += window.numel() - 1
    print(json.dumps({"eval_tokens_scored": count, "eval_seq": seq, "mean_nll": total / count,
                      "perplexity": math.exp(total / count)}))


def dump_logits(args):
    """Torch logits on the exported (F16 -> F32) weights over the first eval tokens, for the ONNX check.

    Full rows go to --dump-logits; --dump-compact gets, per row, the full-row logsumexp and argmax
    and the logits at a fixed column subset (every 251st id plus the row's top 8), small enough to commit.
    """
    model, config = load_exported(args.out)
    tokens, _ = load_tokens(args.data_dir, "eval")
    ids = tokens[: args.dump_length].unsqueeze(0)
    with torch.no_grad():
        logits = model(ids)[0]
    length = ids.shape[1]
    picked = sorted(set([0, 1, length // 2, length - 2, length - 1] + list(range(args.dump_rows))))
    payload = {
        "note": "torch float32 logits of scripts/train_gpt_neo.py on the exported F16 weights (upcast to F32)",
        "model_sha256": hashlib.sha256(open(os.path.join(args.out, "model.safetensors"), "rb").read()).hexdigest(),
        "input_ids": ids[0].tolist(),
        "rows": picked,
        "vocab": config["vocab_size"],
        "logits": {str(r): [float(x) for x in logits[r].tolist()] for r in picked},
    }
    with open(args.dump_logits, "w") as handle:
        json.dump(payload, handle)
    print(f"wrote {args.dump_logits}: {len(picked)} rows of {length} positions")
    if args.dump_compact:
        compact = {key: payload[key] for key in ("note", "model_sha256", "input_ids", "rows", "vocab")}
        compact["rows_detail"] = []
        for r in picked:
            row = logits[r]
            top = torch.topk(row, 8).indices.tolist()
            columns = sorted(set(list(range(0, config["vocab_size"], 251)) + top))
            compact["rows_detail"].append({
                "row": r,
                "logsumexp": torch.logsumexp(row.double(), 0).item(),
                "argmax": int(torch.argmax(row).item()),
                "columns": columns,
                "values": [float(row[c].item()) for c in columns],
            })
        with open(args.dump_compact, "w") as handle:
            json.dump(compact, handle)
        print(f"wrote {args.dump_compact}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check-fixtures", metavar="DIR")
    parser.add_argument("--fixture-tolerance", type=float, default=1e-4)
    parser.add_argument("--check-report", metavar="FILE", help="with --check-fixtures: write the results as JSON")
    parser.add_argument("--eval-only", action="store_true")
    parser.add_argument("--export-only", action="store_true")
    parser.add_argument("--dump-logits", metavar="FILE")
    parser.add_argument("--dump-compact", metavar="FILE")
    parser.add_argument("--dump-length", type=int, default=600)
    parser.add_argument("--dump-rows", type=int, default=4)
    parser.add_argument("--eval-seq", type=int, default=1024)
    parser.add_argument("--data-dir", default="tmp/train-data")
    parser.add_argument("--run-dir", default="tmp/train-run")
    parser.add_argument("--out", default="models/gpt-neo-brown")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vocab-size", type=int, default=50257)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--intermediate-size", type=int, default=None)
    parser.add_argument("--window-size", type=int, default=256)
    parser.add_argument("--max-positions", type=int, default=2048)
    parser.add_argument("--attention-types", default='[[["global","local"],2]]')
    parser.add_argument("--tokens-per-step", type=int, default=2048)
    parser.add_argument("--seq-lengths", default="512,512,1024,512,512,2048")
    parser.add_argument("--max-steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--min-lr-ratio", type=float, default=0.1)
    parser.add_argument("--warmup-steps", type=int, default=60)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--grad-clip", type=float, default=1.0)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--init-weights", metavar="DIR",
                        help="start from an exported checkpoint's weights (same tensor shapes; fresh optimizer)")
    parser.add_argument("--output-vocab", choices=["all", "seen", "sampled"], default="all",
                        help="seen: score only ids that occur in the train split; unseen rows held at 0 (exact). "
                             "sampled: as seen, but each step scores its batch's targets plus --sampled-negatives "
                             "drawn ids (sampled softmax; not exact: end with a seen phase)")
    parser.add_argument("--dropout", type=float, default=0.0,
                        help="training-time dropout on embeddings, attention weights and residual branches (as HF's GPT-Neo places it)")
    parser.add_argument("--sampled-negatives", type=int, default=4096,
                        help="with --output-vocab sampled: draws per step from the seen ids' unigram^0.75")
    parser.add_argument("--init-from", metavar="CHECKPOINT", help="second phase: start from this run's checkpoint.pt")
    parser.add_argument("--grow", action="store_true",
                        help="with --init-from: the checkpoint has fewer layers (same pattern); new layers start as identities")
    parser.add_argument("--schedule-start", type=int, default=0, help="step where this phase's warmup+cosine starts")
    parser.add_argument("--stop-at-step", type=int, default=None,
                        help="stop at this step; the schedule still follows --max-steps (reproduces a deadline-stopped run)")
    parser.add_argument("--deadline-utc", default=None, help="HH:MM (UTC, the next such time, within 24 hours); stop and export before it")
    parser.add_argument("--deadline-margin-s", type=float, default=60.0)
    args = parser.parse_args()
    args.command = " ".join(sys.argv)
    torch.set_num_threads(args.threads)
    if args.check_fixtures:
        sys.exit(0 if check_fixtures(args.check_fixtures, args.fixture_tolerance, args.check_report) else 1)
    if args.export_only:
        export_from_checkpoint(args)
        return
    if args.eval_only:
        evaluate(args)
        return
    if args.dump_logits:
        dump_logits(args)
        return
    train(args)


if __name__ == "__main__":
    main()
