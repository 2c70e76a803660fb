"""`wikigpt export`: a checkpoint as a Hugging Face `LlamaForCausalLM` directory.

Our GPT *is* a Llama (pre-norm RMSNorm, RoPE, SwiGLU, no biases, tied head), so the export is a
renaming plus one split: the fused `qkv` projection becomes `q_proj`, `k_proj`, `v_proj`.

RoPE needs no permutation. Our `apply_rope` pairs dim i with dim i + head_dim/2 (`rotate_half`),
exactly like transformers' `LlamaRotaryEmbedding` + `apply_rotary_pos_emb` (cos/sin tables are
`cat([freqs, freqs])`); checkpoints converted from Meta's interleaved layout need a permutation,
ours do not. `tests/test_export.py` holds this to account: logits match to 1e-4.

The directory loads with `AutoModelForCausalLM` / `AutoTokenizer`, serves with vLLM and converts
with llama.cpp's `convert_hf_to_gguf.py`. Its `chat_template` (jinja) renders exactly
`wikigpt.chat_template.render_text`, special-token stripping and system folding included.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from wikigpt.errors import WikigptError
from wikigpt.io import atomic_dir
from wikigpt.specials import ASSISTANT, END, END_ID, PAD_ID, USER

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# One pass of `strip_special_literals` (regex `<\|[^\s<>|]{0,64}\|>`) in plain jinja, repeated until
# nothing changes, as the Python loop does. Jinja has no regex: split on "<|", and a piece whose
# text before the first "|>" is 0-64 characters without whitespace, "<", ">" or "|" was a literal.
# (`body.split()|join('') == body` is "no whitespace": str.split() and re's \s agree on it.)
_STRIP_MACRO = r"""{%- macro strip_specials(text) -%}
{%- set s = namespace(text=text, changed=true) -%}
{%- for _ in range((text|length) // 4 + 2) -%}
{%- if not s.changed -%}{%- break -%}{%- endif -%}
{%- set pieces = s.text.split('<|') -%}
{%- set p = namespace(out=pieces[0], changed=false) -%}
{%- for piece in pieces[1:] -%}
{%- set body = piece.split('|>')[0] -%}
{%- if '|>' in piece and body|length <= 64 and body.split()|join('') == body and '<' not in body and '>' not in body and '|' not in body -%}
{%- set p.out = p.out + piece[body|length + 2:] -%}
{%- set p.changed = true -%}
{%- else -%}
{%- set p.out = p.out + '<|' + piece -%}
{%- endif -%}
{%- endfor -%}
{%- set s.text = p.out -%}
{%- set s.changed = p.changed -%}
{%- endfor -%}
{{- s.text -}}
{%- endmacro -%}
"""

# The turns: leading system messages are folded into the first user turn ("{system}\n\n{user}"),
# roles must alternate user/assistant starting with user, as in `chat_template.normalize_messages`.
_TURNS = r"""{%- set c = namespace(system='', turns=0, last='') -%}
{%- for message in messages -%}
{%- if message['content'] is not string -%}{{- raise_exception('message content must be a string') -}}{%- endif -%}
{%- set content = strip_specials(message['content']) -%}
{%- if message['role'] == 'system' -%}
{%- if c.turns > 0 -%}{{- raise_exception('system messages are only allowed at the beginning') -}}{%- endif -%}
{%- set c.system = c.system + content + '\n\n' -%}
{%- elif message['role'] == 'user' or message['role'] == 'assistant' -%}
{%- if (message['role'] == 'user') != (c.turns % 2 == 0) -%}{{- raise_exception('roles must alternate user/assistant, starting with user') -}}{%- endif -%}
{%- if message['role'] == 'user' -%}
{{- 'USER' + (c.system if c.turns == 0 else '') + content + 'END' -}}
{%- else -%}
{{- 'ASSISTANT' + content + 'END' -}}
{%- endif -%}
{%- set c.turns = c.turns + 1 -%}
{%- set c.last = message['role'] -%}
{%- else -%}{{- raise_exception('unsupported role: ' + message['role']) -}}{%- endif -%}
{%- endfor -%}
{%- if c.turns == 0 -%}{{- raise_exception('conversation has no user message') -}}{%- endif -%}
{%- if add_generation_prompt -%}
{%- if c.last != 'user' -%}{{- raise_exception('add_generation_prompt needs a conversation that ends with a user message') -}}{%- endif -%}
{{- 'ASSISTANT' -}}
{%- endif -%}"""

CHAT_TEMPLATE = _STRIP_MACRO + _TURNS.replace("'USER'", repr(USER)).replace("'END'", repr(END)).replace(
    "'ASSISTANT'", repr(ASSISTANT)
)


def llama_config(cfg, dtype: str) -> dict:
    """config.json of the equivalent LlamaForCausalLM. `rope_theta` is written both the classic
    way (transformers 4.x, vLLM, llama.cpp) and as `rope_parameters` (transformers 5)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.n_embd,
        "intermediate_size": cfg.mlp_hidden,
        "num_hidden_layers": cfg.n_layer,
        "num_attention_heads": cfg.n_head,
        "num_key_value_heads": cfg.n_head,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.block_size,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "rope_scaling": None,
        "tie_word_embeddings": True,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "use_cache": True,
        # No BOS: our sequences start directly with <|user|> or text. <|end|> ends an answer.
        "bos_token_id": None,
        "eos_token_id": END_ID,
        "pad_token_id": PAD_ID,
        "torch_dtype": dtype,
    }


def llama_state_dict(model, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Our parameter names -> HF Llama names; qkv split by rows (q, k, v are stacked in that order
    and each keeps our head layout, head h = rows h*head_dim..(h+1)*head_dim)."""
    cfg = model.config
    sd = model.state_dict()
    C = cfg.n_embd
    out = {"model.embed_tokens.weight": sd["wte.weight"], "model.norm.weight": sd["norm.weight"]}
    for i in range(cfg.n_layer):
        src, dst = f"blocks.{i}.", f"model.layers.{i}."
        qkv = sd[src + "attn.qkv.weight"]
        if qkv.shape != (3 * C, C):
            raise WikigptError(f"unexpected qkv shape {tuple(qkv.shape)} in layer {i}")
        out[dst + "self_attn.q_proj.weight"] = qkv[:C]
        out[dst + "self_attn.k_proj.weight"] = qkv[C : 2 * C]
        out[dst + "self_attn.v_proj.weight"] = qkv[2 * C :]
        out[dst + "self_attn.o_proj.weight"] = sd[src + "attn.proj.weight"]
        out[dst + "input_layernorm.weight"] = sd[src + "attn_norm.weight"]
        out[dst + "post_attention_layernorm.weight"] = sd[src + "mlp_norm.weight"]
        out[dst + "mlp.gate_proj.weight"] = sd[src + "mlp.gate.weight"]
        out[dst + "mlp.up_proj.weight"] = sd[src + "mlp.up.weight"]
        out[dst + "mlp.down_proj.weight"] = sd[src + "mlp.down.weight"]
    # lm_head is tied to embed_tokens (tie_word_embeddings): not stored, as HF does for tied models.
    return {k: v.detach().to("cpu", dtype).contiguous() for k, v in out.items()}


def tokenizer_files(tok, tokenizer_json: Path, out: Path, block_size: int) -> None:
    """tokenizer.json (copied as is) + the side files PreTrainedTokenizerFast reads (the tokenizer
    stage's own, plus the chat template and the context length)."""
    from wikigpt.tokenizer import hf_files

    shutil.copyfile(tokenizer_json, out / "tokenizer.json")
    files = hf_files(tok)
    files["tokenizer_config.json"] = {
        **files["tokenizer_config.json"],
        "add_bos_token": False,
        "add_eos_token": False,
        "model_max_length": block_size,
        "chat_template": CHAT_TEMPLATE,
    }
    for name, obj in files.items():
        _write_json(out / name, obj)
    # Also as a standalone file: llama.cpp's `--chat-template-file` and vLLM's `--chat-template` take it.
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def export(checkpoint: str | Path, tokenizer: str | Path, out: str | Path, dtype: str = "float32") -> Path:
    """Write the HF directory at `out` (atomically: a failed export leaves nothing behind)."""
    from wikigpt.tokenizer import load_tokenizer, tokenizer_file
    from wikigpt.train.checkpoint import load_model

    if dtype not in DTYPES:
        raise WikigptError(f"--dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
    checkpoint, out = Path(checkpoint), Path(out)
    for src in (checkpoint, Path(tokenizer)):
        if out.resolve() == src.resolve() or out.resolve() in src.resolve().parents:
            raise WikigptError(f"{out}: --out would overwrite the input {src}; choose another directory")
    tok_json = tokenizer_file(tokenizer)
    tok = load_tokenizer(tok_json)  # a clear error if missing; validates the reserved ids 0-3
    model = load_model(checkpoint)
    cfg = model.config
    if tok.get_vocab_size() > cfg.vocab_size:
        raise WikigptError(
            f"{tok_json}: tokenizer has {tok.get_vocab_size()} tokens but the model's vocab_size is {cfg.vocab_size}"
        )
    with atomic_dir(out) as tmp:
        save_file(llama_state_dict(model, DTYPES[dtype]), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        _write_json(tmp / "config.json", llama_config(cfg, dtype))
        _write_json(
            tmp / "generation_config.json",
            {"bos_token_id": None, "eos_token_id": END_ID, "pad_token_id": PAD_ID},
        )
        tokenizer_files(tok, tok_json, tmp, cfg.block_size)
    return out


def cli(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="wikigpt export", description="Export a checkpoint as a Hugging Face LlamaForCausalLM directory."
    )
    ap.add_argument("--checkpoint", default="data/models/sft", help="model dir with model.safetensors + config.json")
    ap.add_argument("--tokenizer", default="data/tokenizer", help="tokenizer dir or tokenizer.json")
    ap.add_argument("--out", required=True, help="output directory (replaced if it exists)")
    ap.add_argument("--dtype", default="float32", choices=list(DTYPES), help="weight dtype in the export")
    args = ap.parse_args(argv)
    out = export(args.checkpoint, args.tokenizer, args.out, args.dtype)
    print(f"wrote {out}/ (load with transformers.AutoModelForCausalLM.from_pretrained({str(out)!r}))")
    return 0
