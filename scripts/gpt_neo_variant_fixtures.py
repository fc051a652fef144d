#!/usr/bin/python3
"""Write small GPT-Neo checkpoints + reference logits for config variants spg must run.

The reference is the second PyTorch implementation in train_gpt_neo.py (written from
transformers' modeling_gpt_neo.py / activations.py semantics, and checked against the HF
fixtures by `train_gpt_neo.py --check-fixtures`); it is NOT Hugging Face's own output.

  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 scripts/gpt_neo_variant_fixtures.py test/fixtures/gpt-neo-variants [NAME ...]

(with NAMEs, only those variants are written; each variant's seed depends on its place in the
sorted list of all variants, so a variant added later changes the seeds of those after it:
regenerate only the new one).

Each variant DIR/<name>/ gets config.json (keys as transformers' save_pretrained writes them),
model.safetensors and reference.json ({"input_ids": [...], "logits": {"shape", "data"}}).
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_gpt_neo import ACTIVATIONS, GptNeoForCausalLM, expand_attention_types, write_safetensors  # noqa: E402

BASE = {
    "vocab_size": 40,
    "hidden_size": 8,
    "num_layers": 2,
    "num_heads": 2,
    "attention_types": [[["global", "local"], 1]],
    "window_size": 4,
    "max_position_embeddings": 16,
    "intermediate_size": None,
    "layer_norm_epsilon": 1e-5,
    "activation_function": "gelu_new",
    "bos_token_id": 39,
    "eos_token_id": 39,
}
SEQUENCE = 12

# name -> (config overrides, options). The activation variants use a wider MLP and larger weights
# so that close activations (erf GELU vs tanh GELU) are > 10x the test tolerance apart in the
# logits; gelu_10 and relu6 get pre-activations past their clips at 10 and 6.
ACTIVATION_OPTIONS = {"fc_std": 0.8, "proj_std": 0.5, "wte_std": 1.0}
VARIANTS = {
    f"act-{name}": ({"activation_function": name, "intermediate_size": 64}, ACTIVATION_OPTIONS)
    for name in sorted(ACTIVATIONS)
}
VARIANTS["act-gelu_10"] = ({"activation_function": "gelu_10", "intermediate_size": 64}, dict(ACTIVATION_OPTIONS, fc_std=6.0))
VARIANTS["act-relu6"] = ({"activation_function": "relu6", "intermediate_size": 64}, dict(ACTIVATION_OPTIONS, fc_std=4.0))
VARIANTS.update({
    # transformers' defaults for bos/eos (50256) lie outside this vocabulary: HF accepts that.
    "all-global": ({"num_layers": 3, "attention_types": [[["global"], 3]], "intermediate_size": 12,
                    "layer_norm_epsilon": 1e-3, "vocab_size": 37, "bos_token_id": 50256, "eos_token_id": 50256}, {}),
    "all-local-wide-window": ({"attention_types": [[["local"], 2]], "window_size": 64}, {}),
    "local-narrow-window": ({"num_layers": 3, "attention_types": [[["local"], 1], [["global", "local"], 1]],
                             "window_size": 2, "hidden_size": 6, "num_heads": 3}, {}),
    "weights-f16": ({}, {"dtype": "F16"}),
    "weights-bf16": ({}, {"dtype": "BF16"}),
    "lm-head-stored": ({}, {"store_lm_head": True}),
    # tie_word_embeddings false: lm_head.weight is a matrix of its own (HF's GPTNeoForCausalLM accepts it).
    "lm-head-untied": ({"tie_word_embeddings": False}, {}),
})


def hf_config_json(config, dtype):
    out = dict(config)
    out.update({
        "architectures": ["GPTNeoForCausalLM"],
        "attention_dropout": 0.0,
        "attention_layers": expand_attention_types(config["attention_types"]),
        "classifier_dropout": 0.1,
        "embed_dropout": 0.0,
        "initializer_range": 0.02,
        "model_type": "gpt_neo",
        "resid_dropout": 0.0,
        "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype],
        "use_cache": True,
    })
    return dict(sorted(out.items()))


def randomise(model, generator, options):
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".ln_" in name or "ln_f" in name:
                parameter.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn(parameter.shape, generator=generator))
            elif name.endswith("bias"):
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
            else:
                std = 0.3
                if ".mlp.c_fc." in name:
                    std = options.get("fc_std", 0.6)
                elif ".mlp.c_proj." in name:
                    std = options.get("proj_std", 0.3)
                elif name == "transformer.wte.weight":
                    std = options.get("wte_std", 0.3)
                parameter.copy_(std * torch.randn(parameter.shape, generator=generator))


def main(out_root, only=()):
    torch.set_num_threads(1)
    for index, (name, (overrides, options)) in enumerate(sorted(VARIANTS.items())):
        if only and name not in only:
            continue
        config = dict(BASE, **overrides)
        dtype = options.get("dtype", "F32")
        seed = 1000 + index
        generator = torch.Generator().manual_seed(seed)
        model = GptNeoForCausalLM(config).eval()
        randomise(model, generator, options)
        tensors = dict(model.state_dict())
        if options.get("store_lm_head"):
            tensors["lm_head.weight"] = tensors["transformer.wte.weight"].clone()
        directory = os.path.join(out_root, name)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "model.safetensors")
        write_safetensors(path, tensors, dtype)
        # The reference runs on the weights as stored (rounded to F16/BF16, then float32).
        with torch.no_grad():
            for key, value in model.state_dict().items():
                value.copy_(value.to({"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[dtype]).float())
        ids = torch.randint(0, config["vocab_size"], (1, SEQUENCE), generator=torch.Generator().manual_seed(seed + 1))
        with torch.no_grad():
            logits = model(ids)
        with open(os.path.join(directory, "config.json"), "w") as handle:
            json.dump(hf_config_json(config, dtype), handle, indent=2)
            handle.write("\n")
        reference = {
            "generator": "scripts/gpt_neo_variant_fixtures.py (PyTorch re-implementation, not transformers)",
            "torch": torch.__version__,
            "seed": seed,
            "input_ids": ids[0].tolist(),
            "logits": {"shape": list(logits.shape), "data": [float(f"{v:.9g}") for v in logits.flatten().tolist()]},
        }
        with open(os.path.join(directory, "reference.json"), "w") as handle:
            json.dump(reference, handle, separators=(",", ":"))
            handle.write("\n")
        print(f"{name}: {config['activation_function']}, {dtype}, logits max |x| {logits.abs().max():.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
